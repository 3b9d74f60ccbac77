package gtfsrt

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"citybrain/engine"
)

// DecodeFiles reads the feed files at paths as one snapshot and converts them (see Snapshot).
func (d *Decoder) DecodeFiles(paths []string, emit func(engine.Event) error) error {
	feeds := make([]Feed, 0, len(paths))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("cannot open GTFS-realtime feed: %w", err)
		}
		feed, err := ReadFeed(f, p)
		f.Close()
		if err != nil {
			return err
		}
		feeds = append(feeds, feed)
	}
	return d.Snapshot(feeds, emit)
}

// Fetch GETs one feed URL (at most MaxFeedBytes) with client.
func Fetch(ctx context.Context, client *http.Client, url string) (Feed, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Feed{}, fmt.Errorf("cannot fetch GTFS-realtime feed (%s): %w", url, err)
	}
	req.Header.Set("Accept", "application/x-protobuf")
	resp, err := client.Do(req)
	if err != nil {
		return Feed{}, fmt.Errorf("cannot fetch GTFS-realtime feed (%s): %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Feed{}, fmt.Errorf("cannot fetch GTFS-realtime feed (%s): HTTP status %s", url, resp.Status)
	}
	return ReadFeed(resp.Body, url)
}

// Poll fetches urls every interval, each round as one snapshot, until ctx is done or emit fails. A round whose
// fetch fails is reported to onErr (which may be nil) and skipped; the next round is tried as usual. Poll returns
// ctx's error or emit's.
func (d *Decoder) Poll(ctx context.Context, client *http.Client, urls []string, every time.Duration, onErr func(error), emit func(engine.Event) error) error {
	if every <= 0 {
		return fmt.Errorf("cannot poll GTFS-realtime (interval %v): interval must be > 0", every)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		feeds := make([]Feed, 0, len(urls))
		var ferr error
		for _, u := range urls {
			f, err := Fetch(ctx, client, u)
			if err != nil {
				ferr = err
				break
			}
			feeds = append(feeds, f)
		}
		if ferr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if onErr != nil {
				onErr(ferr)
			}
		} else if err := d.Snapshot(feeds, emit); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
