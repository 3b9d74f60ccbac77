package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// replayOverServer creates a replay session of the whole log on the running target (POST /api/v1/replays,
// speed 0, no warm-up), waits until it has finished, and takes the speed it reports.
func (r *runner) replayOverServer(ctx context.Context, t *target, n uint64, span time.Duration) (*Replay, error) {
	tok, err := os.ReadFile(filepath.Join(t.dataDir, "admin.token"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the target's admin token: %w", err)
	}
	call := func(method, path string, body string, out any) error {
		req, err := http.NewRequestWithContext(ctx, method, "http://"+t.httpAddr+path, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := statusClient.Do(req)
		if err != nil {
			return fmt.Errorf("cannot %s %s: %w", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("cannot %s %s: HTTP %d: %s", method, path, resp.StatusCode, tail(string(b)))
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	var in struct {
		ID              string  `json:"id"`
		State           string  `json:"state"`
		Events          uint64  `json:"events"`
		EventsPerSecond float64 `json:"events_per_second"`
		RealTime        float64 `json:"real_time_multiple"`
		Played          float64 `json:"played_seconds"`
		Error           string  `json:"error"`
	}
	start := time.Now()
	if err := call(http.MethodPost, "/api/v1/replays", `{"speed":0,"warmup_s":0}`, &in); err != nil {
		return nil, err
	}
	defer call(http.MethodDelete, "/api/v1/replays/"+in.ID, "", nil)
	deadline := start.Add(5 * time.Minute)
	for in.State != "finished" {
		if in.State == "failed" || in.State == "closed" {
			return nil, fmt.Errorf("the replay session %s: %s", in.State, in.Error)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the replay session has not finished within 5 minutes (%d events)", in.Events)
		}
		time.Sleep(20 * time.Millisecond)
		if err := call(http.MethodGet, "/api/v1/replays/"+in.ID, "", &in); err != nil {
			return nil, err
		}
	}
	wall := time.Since(start)
	rp := &Replay{Kind: "replay session on the running server (POST /api/v1/replays), reads the log's message blocks directly",
		Events: in.Events, EventTimeSpan: span.Seconds(), StartupSeconds: max(wall.Seconds()-in.Played, 0), CatchUpSeconds: in.Played,
		EventsPerSec: in.EventsPerSecond, RealTimeFactor: in.RealTime, WallEventsPerSec: float64(in.Events) / wall.Seconds()}
	if in.Events != n {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("replay session on the server played %d events, the log holds %d", in.Events, n))
	}
	return rp, nil
}
