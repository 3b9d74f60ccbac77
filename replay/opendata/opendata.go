// Package opendata builds the public data sets CityBrain publishes: per-cell and per-link speed and traffic
// index (TPI) history in 5-minute bins, and incidents without personal data, one file per day in Parquet and
// GeoJSON, described by a DCAT-style catalogue (docs/opendata.md). Files are built from the event log and
// carry no vehicle, caller or unit ids: speeds are aggregated, bins with fewer than MinSamples observations
// are left out, and incident positions are coarsened.
package opendata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/geo"
)

// Data set names.
const (
	Cells     = "cells"
	Links     = "links"
	Incidents = "incidents"
)

// Datasets lists the data sets in catalogue order.
var Datasets = []string{Cells, Links, Incidents}

const (
	// BinMs is the width of a history bin.
	BinMs = 5 * 60_000
	// MinSamples: a bin with fewer speed observations is left out (too few to be anonymous or meaningful).
	MinSamples = 3
	// CoarseRes is the H3 resolution incident positions are coarsened to (cells of about 0.7 km²).
	CoarseRes = 8
	// LinkSnapM: a probe is counted on the nearest link within this distance.
	LinkSnapM = 30.0
)

// Source is what the builder reads besides the log.
type Source struct {
	Log     *eventlog.Log
	Res     int          // base H3 resolution of cells
	Network *geo.Network // nil: no per-link data set
	// FreeFlow gives a cell's free-flow speed (network or learned); nil or false: DefaultFreeFlowKmh.
	FreeFlow func(cell uint64) (float64, bool)
	// Incidents returns the incidents the engine holds (copies).
	Incidents func() []engine.Incident
	Mem       memory.Allocator
}

// DefaultFreeFlowKmh is the free-flow speed of a cell nothing else tells.
const DefaultFreeFlowKmh = 50.0

// Row is one bin of one cell or link.
type Row struct {
	Bin        int64 // bin start, Unix ms
	Key        string
	Name       string // link name
	Lat, Lng   float64
	SpeedKmh   float64
	Samples    int32
	FreeFlow   float64
	Congestion float64
	TPI        float64
	Level      string
}

type acc struct {
	sum, w float64
	n      int32
}

// Day is the aggregated history of one day (UTC) plus its incidents.
type Day struct {
	Date      string // YYYY-MM-DD
	Cells     []Row
	Links     []Row
	Incidents []IncidentRow
}

// IncidentRow is an incident as published: no evidence ids, position coarsened.
type IncidentRow struct {
	ID              string
	Type            string
	Severity        int32
	Status          string
	FirstEvidenceAt int64
	DetectedAt      int64
	ClearedAt       int64   // 0 while active
	Cell            string  // H3 cell at CoarseRes
	Lat, Lng        float64 // the cell's centre
	EvidenceCount   int32
	EvidenceKinds   string // "report:2 video:1"
}

// ParseDate checks a YYYY-MM-DD date and returns its [start, end) in UTC.
func ParseDate(s string) (time.Time, time.Time, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("date %q must be YYYY-MM-DD", s)
	}
	return t, t.Add(24 * time.Hour), nil
}

// Build aggregates the log's events of date (UTC) into a Day; history false leaves the log alone and builds
// the incidents only.
func Build(ctx context.Context, src Source, date string, history bool) (*Day, error) {
	from, to, err := ParseDate(date)
	if err != nil {
		return nil, err
	}
	if src.Mem == nil {
		src.Mem = memory.DefaultAllocator
	}
	cells := map[[2]int64]*acc{} // (cell, bin)
	links := map[linkBin]*acc{}
	var ns *geo.Network = src.Network
	first, last, ok, err := uint64(0), uint64(0), false, error(nil)
	if history {
		if first, last, ok, err = src.Log.SeqRange(ctx, from, to, 0); err != nil {
			return nil, err
		}
	}
	if ok {
		rr, err := src.Log.NewRangeReader(ctx, first, last)
		if err != nil {
			return nil, err
		}
		defer rr.Close()
		for {
			rec, err := rr.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			addBatch(rec, from.UnixMilli(), to.UnixMilli(), cells, links, ns)
			rec.Release()
		}
	}
	d := &Day{Date: date}
	for k, a := range cells {
		if a.n < MinSamples || a.w <= 0 {
			continue
		}
		c := uint64(k[0])
		ff := DefaultFreeFlowKmh
		if src.FreeFlow != nil {
			if v, ok := src.FreeFlow(c); ok && v > 0 {
				ff = v
			}
		}
		lat, lng := geo.Center(c)
		d.Cells = append(d.Cells, row(k[1], geo.CellString(c), "", lat, lng, a, ff))
	}
	for k, a := range links {
		if a.n < MinSamples || a.w <= 0 {
			continue
		}
		l := ns.Links()[k.link]
		ff, _ := ns.FreeFlowKmh(l.ID)
		if !(ff > 0) {
			ff = DefaultFreeFlowKmh
		}
		p, _ := l.PointAt(l.GeomLengthM() / 2)
		d.Links = append(d.Links, row(k.bin, l.ID, l.Name, p.Lat, p.Lng, a, ff))
	}
	order := func(rows []Row) {
		sort.Slice(rows, func(i, j int) bool {
			if rows[i].Bin != rows[j].Bin {
				return rows[i].Bin < rows[j].Bin
			}
			return rows[i].Key < rows[j].Key
		})
	}
	order(d.Cells)
	order(d.Links)
	if src.Incidents != nil {
		for _, in := range src.Incidents() {
			if in.FirstEvidenceAt < from.UnixMilli() || in.FirstEvidenceAt >= to.UnixMilli() || in.Status == engine.StatusDismissed || in.Status == "" {
				continue
			}
			d.Incidents = append(d.Incidents, publicIncident(&in))
		}
	}
	return d, nil
}

type linkBin struct {
	link int32
	bin  int64
}

func row(bin int64, key, name string, lat, lng float64, a *acc, ff float64) Row {
	sp := a.sum / a.w
	c := engine.Congestion(sp, ff)
	tpi := engine.TPI(c)
	return Row{Bin: bin, Key: key, Name: name, Lat: round(lat, 6), Lng: round(lng, 6), SpeedKmh: round(sp, 2), Samples: a.n,
		FreeFlow: round(ff, 1), Congestion: round(c, 3), TPI: round(tpi, 2), Level: engine.Level(tpi)}
}

func round(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

// addBatch adds the speed observations of rec with ts in [from, to).
func addBatch(rec arrow.Record, from, to int64, cells map[[2]int64]*acc, links map[linkBin]*acc, net *geo.Network) {
	ts := rec.Column(engine.ColTS).(*array.Timestamp)
	kinds := rec.Column(engine.ColKind).(*array.Uint8)
	cellCol := rec.Column(engine.ColCell).(*array.Uint64)
	var ev engine.Event
	for i := 0; i < int(rec.NumRows()); i++ {
		t := int64(ts.Value(i))
		k := engine.Kind(kinds.Value(i))
		if t < from || t >= to || (k != engine.KindProbe && k != engine.KindTransit && k != engine.KindDetector) {
			continue
		}
		engine.ReadEvent(rec, i, &ev)
		if !engine.Has(ev.SpeedKmh) || ev.SpeedKmh < 0 {
			continue
		}
		w := 1.0
		switch k {
		case engine.KindTransit:
			w = 0.5
		case engine.KindDetector:
			if !engine.Has(ev.FlowVph) || !engine.Has(ev.IntervalS) || ev.FlowVph <= 0 {
				continue
			}
			w = math.Max(1, ev.FlowVph*ev.IntervalS/3600)
		}
		bin := t - t%BinMs
		key := [2]int64{int64(cellCol.Value(i)), bin}
		a := cells[key]
		if a == nil {
			a = &acc{}
			cells[key] = a
		}
		a.sum += w * ev.SpeedKmh
		a.w += w
		a.n++
		if net != nil && k != engine.KindDetector {
			if c := net.Nearest(ev.Lat, ev.Lng, LinkSnapM, 1); len(c) == 1 {
				lk := linkBin{int32(c[0].Link.Index()), bin}
				la := links[lk]
				if la == nil {
					la = &acc{}
					links[lk] = la
				}
				la.sum += w * ev.SpeedKmh
				la.w += w
				la.n++
			}
		}
	}
}

func publicIncident(in *engine.Incident) IncidentRow {
	r := IncidentRow{ID: in.ID, Type: in.Type, Severity: int32(in.Severity), Status: in.Status,
		FirstEvidenceAt: in.FirstEvidenceAt, DetectedAt: in.DetectedAt, ClearedAt: in.ClearedAt, EvidenceCount: int32(in.EvidenceCount)}
	if c, err := geo.CellOf(in.Lat, in.Lng, CoarseRes); err == nil {
		r.Cell = geo.CellString(c)
		r.Lat, r.Lng = geo.Center(c)
		r.Lat, r.Lng = round(r.Lat, 5), round(r.Lng, 5)
	}
	counts := map[string]int{}
	for _, e := range in.Evidence {
		counts[e.Kind]++
	}
	var kinds []string
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for i, k := range kinds {
		if i > 0 {
			r.EvidenceKinds += " "
		}
		r.EvidenceKinds += fmt.Sprintf("%s:%d", k, counts[k])
	}
	return r
}
