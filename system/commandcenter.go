package system

import (
	"io"

	"github.com/apache/arrow/go/v17/arrow"

	"context"
	"fmt"
	"time"

	"citybrain/api"
	"citybrain/basemap"
	"citybrain/engine"
	"citybrain/history"
)

// CommandCenter is what `run` sets for the command center beyond the core: the base map, the city's time
// zone and the history store.
type CommandCenter struct {
	// Basemap is a tile archive: a .pmtiles or .mbtiles file or an http(s) URL (run --basemap).
	Basemap string
	// OSM is an OSM XML extract whose water, parks, roads and places draw the base map (run --osm).
	OSM string
	// BaseFeatures are base map features given directly (the demo city's lake and places); OSM wins.
	BaseFeatures *basemap.Set
	// TimeZone is the city's IANA time zone, shown to the web app (run --tz).
	TimeZone string
	// History sizes the history store (zero: history.DefaultConfig).
	History history.Config
}

// commandCenter state of a running system.
type ccState struct {
	tiles    basemap.Archive
	histStop chan struct{}
	histDone chan struct{}
	History  *history.Store
}

// startCommandCenter opens the base map, starts the history sampler and sets the API's fields.
func (s *System) startCommandCenter(srv *api.Server, ecfg engine.Config) error {
	cc := s.cfg.CommandCenter
	bm := &api.Basemap{Features: cc.BaseFeatures}
	if cc.OSM != "" {
		t0 := time.Now()
		set, err := basemap.LoadOSMFile(cc.OSM)
		if err != nil {
			return err
		}
		bm.Features = set
		s.logger.Printf("base map from %s: %v in %s", cc.OSM, set.Counts(), time.Since(t0).Round(time.Millisecond))
	}
	if cc.Basemap != "" {
		a, err := basemap.Open(cc.Basemap)
		if err != nil {
			return err
		}
		s.cc.tiles = a
		bm.Tiles = a
		in := a.Info()
		s.logger.Printf("base map tiles %s: %s %s, zoom %d..%d", in.Source, in.Type, in.Format, in.MinZoom, in.MaxZoom)
	}
	srv.Basemap = bm
	srv.TimeZone = cc.TimeZone
	if cc.TimeZone != "" {
		if _, err := time.LoadLocation(cc.TimeZone); err != nil {
			return fmt.Errorf("cannot use time zone %q: %w", cc.TimeZone, err)
		}
	}
	st := history.New(cc.History)
	s.cc.History = st
	logRef := s.Log
	hcfg := ecfg
	hcfg.OnDelta, hcfg.Mem = nil, nil
	srv.History = &api.History{Store: st, Fill: &history.Backfiller{Store: st, Engine: hcfg,
		Open: func(ctx context.Context, from, to time.Time) (history.Reader, error) {
			first, last, ok, err := logRef.SeqRange(ctx, from, to, 0)
			if err != nil {
				return nil, err
			}
			if !ok {
				return emptyReader{}, nil
			}
			return logRef.NewRangeReader(ctx, first, last)
		}}}
	s.cc.histStop, s.cc.histDone = make(chan struct{}), make(chan struct{})
	go func() { defer close(s.cc.histDone); st.Run(s.cc.histStop, s.Engine, time.Second) }()
	return nil
}

func (s *System) stopCommandCenter() {
	if s.cc.histStop != nil {
		close(s.cc.histStop)
		<-s.cc.histDone
		s.cc.histStop = nil
	}
	if s.cc.tiles != nil {
		s.cc.tiles.Close()
	}
}

type emptyReader struct{}

func (emptyReader) Next(context.Context) (arrow.Record, error) { return nil, io.EOF }
func (emptyReader) Close() error                               { return nil }
