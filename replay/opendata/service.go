package opendata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/eventlog"
)

// Formats of the files.
var Formats = map[string]string{"parquet": "application/vnd.apache.parquet", "geojson": "application/geo+json"}

// Service answers the open-data API: the catalogue and the files, cached. Safe for concurrent use.
type Service struct {
	Src Source
	// Dir caches the history files of complete days (empty: no disk cache).
	Dir string
	// Watermark returns the engine's watermark (ms): a day whose end is behind it is complete.
	Watermark func() int64
	// MaxDays bounds the days listed (default 31, the newest).
	MaxDays int

	mu     sync.Mutex
	recent map[string]cached // incomplete days and incidents: kept a minute
	build  sync.Mutex        // one build at a time (a day's build scans the log)
}

type cached struct {
	data []byte
	at   time.Time
}

// ErrNoData is returned for a day the log does not cover.
var ErrNoData = errors.New("no data for that day")

// Days returns the days (YYYY-MM-DD, oldest first) from the log's first event to the watermark.
func (s *Service) Days(ctx context.Context) ([]string, error) {
	st, err := s.Src.Log.State(ctx)
	if err != nil {
		return nil, err
	}
	if st.Msgs == 0 {
		return nil, nil
	}
	wm := s.Watermark()
	if wm <= 0 {
		return nil, nil
	}
	first := wm
	rr, err := s.Src.Log.NewRangeReader(ctx, st.FirstSeq, min(st.LastSeq, st.FirstSeq+64))
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	if rec, err := rr.Next(ctx); err == nil { // the first batch of the log stands for its start
		lo, _ := eventlog.TSExtent(rec)
		rec.Release()
		first = min(first, lo)
	}
	maxDays := s.MaxDays
	if maxDays <= 0 {
		maxDays = 31
	}
	start := time.UnixMilli(first).UTC().Truncate(24 * time.Hour)
	end := time.UnixMilli(wm).UTC().Truncate(24 * time.Hour)
	if end.Sub(start) > time.Duration(maxDays-1)*24*time.Hour {
		start = end.Add(-time.Duration(maxDays-1) * 24 * time.Hour)
	}
	var out []string
	for d := start; !d.After(end); d = d.Add(24 * time.Hour) {
		out = append(out, d.Format("2006-01-02"))
	}
	return out, nil
}

// complete reports whether every event of date is in (its end is behind the watermark).
func (s *Service) complete(date string) bool {
	_, end, err := ParseDate(date)
	return err == nil && end.UnixMilli() <= s.Watermark()
}

// File returns one data set of one day in format (parquet or geojson).
func (s *Service) File(ctx context.Context, dataset, date, format string) ([]byte, error) {
	if _, ok := Formats[format]; !ok {
		return nil, fmt.Errorf("format %q must be parquet or geojson", format)
	}
	switch dataset {
	case Cells, Incidents:
	case Links:
		if s.Src.Network == nil {
			return nil, fmt.Errorf("no road network loaded: no per-link data set: %w", ErrNoData)
		}
	default:
		return nil, fmt.Errorf("data set %q must be cells, links or incidents", dataset)
	}
	from, _, err := ParseDate(date)
	if err != nil {
		return nil, err
	}
	if from.UnixMilli() > s.Watermark() {
		return nil, fmt.Errorf("%s is after the newest data: %w", date, ErrNoData)
	}
	key := dataset + "/" + date + "." + format
	diskOK := s.Dir != "" && dataset != Incidents && s.complete(date)
	if diskOK {
		if data, err := os.ReadFile(filepath.Join(s.Dir, key)); err == nil {
			return data, nil
		}
	}
	s.mu.Lock()
	if c, ok := s.recent[key]; ok && time.Since(c.at) < time.Minute {
		s.mu.Unlock()
		return c.data, nil
	}
	s.mu.Unlock()

	s.build.Lock()
	defer s.build.Unlock()
	day, err := Build(ctx, s.Src, date, dataset != Incidents)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if format == "parquet" {
		mem := s.Src.Mem
		if mem == nil {
			mem = memory.DefaultAllocator
		}
		err = day.WriteParquet(&buf, dataset, mem)
	} else {
		err = day.WriteGeoJSON(&buf, dataset)
	}
	if err != nil {
		return nil, err
	}
	data := buf.Bytes()
	if diskOK {
		p := filepath.Join(s.Dir, key)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			tmp := p + ".tmp"
			if os.WriteFile(tmp, data, 0o644) == nil {
				os.Rename(tmp, p)
			}
		}
	} else {
		s.mu.Lock()
		if s.recent == nil || len(s.recent) > 256 {
			s.recent = map[string]cached{}
		}
		s.recent[key] = cached{data, time.Now()}
		s.mu.Unlock()
	}
	return data, nil
}

// Catalogue writes the DCAT-style catalogue (JSON-LD with the dcat and dct vocabularies) whose download URLs
// start at base (".../api/v1/opendata").
func (s *Service) Catalogue(ctx context.Context, base string) (map[string]any, error) {
	days, err := s.Days(ctx)
	if err != nil {
		return nil, err
	}
	desc := map[string][2]string{
		Cells:     {"Traffic speed and index per H3 cell", "Mean speed (km/h), free-flow speed, congestion (0..1) and traffic performance index (TPI 0..10) per H3 cell in 5-minute bins, from probe vehicles, buses and loop detectors. Bins with fewer than 3 observations are left out."},
		Links:     {"Traffic speed and index per road link", "The same per road link of the city's network (probes snapped to the nearest link within 30 m)."},
		Incidents: {"Traffic incidents", "Incidents detected or reported, with type, severity, status and times. Positions are coarsened to H3 resolution-8 cells; no vehicle, caller or unit ids."},
	}
	var datasets []map[string]any
	for _, ds := range Datasets {
		if ds == Links && s.Src.Network == nil {
			continue
		}
		var dists []map[string]any
		for _, d := range days {
			for _, f := range []string{"parquet", "geojson"} {
				dists = append(dists, map[string]any{
					"@type": "dcat:Distribution", "dct:title": fmt.Sprintf("%s %s (%s)", ds, d, f),
					"dcat:downloadURL": base + "/" + ds + "/" + d + "." + f, "dcat:mediaType": Formats[f],
					"dct:temporal": map[string]any{"dcat:startDate": d + "T00:00:00Z", "dcat:endDate": d + "T23:59:59Z"},
					"cb:complete":  s.complete(d),
				})
			}
		}
		if dists == nil {
			dists = []map[string]any{}
		}
		datasets = append(datasets, map[string]any{
			"@type": "dcat:Dataset", "dct:identifier": ds, "dct:title": desc[ds][0], "dct:description": desc[ds][1],
			"dcat:keyword": []string{"traffic", "open data", ds}, "dct:license": "https://creativecommons.org/licenses/by/4.0/",
			"dct:accrualPeriodicity": "http://purl.org/cld/freq/daily", "dcat:distribution": dists,
		})
	}
	return map[string]any{
		"@context": map[string]string{"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/", "cb": "urn:citybrain:"},
		"@type":    "dcat:Catalog", "dct:title": "CityBrain open data", "dct:publisher": "CityBrain",
		"dcat:dataset": datasets,
	}, nil
}
