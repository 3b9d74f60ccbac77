package signals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CacheVersion changes whenever a controller or the measurement changes, so cached runs of older code are not
// reused.
const CacheVersion = "2026-12-06.2"

// PreemptVersion changes whenever the emergency vehicle's green wave changes (it keys only +preempt runs).
const PreemptVersion = "3"

// BaselineVersion changes whenever the runs of SUMO's own programs (fixed, actuated, delay_based) or their
// measurement change. Those runs do not depend on CityBrain's controller, feeds or decision period, so a change
// there (CacheVersion) does not rerun them.
const BaselineVersion = "2026-12-05.7"

// cacheKey names a run by everything that decides its outcome.
func cacheKey(sc *Scenario, method string, o Options) string {
	b, _ := json.Marshal(struct {
		V, Name, Config, Method string
		End, Begin              int
		O                       Options
	}{CacheVersion, sc.Name, sc.Config, method, sc.EndS, sc.BeginS, o})
	if isSUMOControlled(method) {
		b, _ = json.Marshal(struct {
			V, Name, Config, Method string
			End, Begin, Seed        int
			Scale                   float64
			SumoBinary              string
			NoEV                    bool
		}{BaselineVersion, sc.Name, sc.Config, method, sc.EndS, sc.BeginS, o.Seed, o.Scale, o.SumoBinary, o.NoEV})
	}
	if strings.HasSuffix(method, PreemptSuffix) {
		b = append(b, "/preempt-"+PreemptVersion...)
	}
	h := sha256.Sum256(b)
	return fmt.Sprintf("%s-%s-s%d-x%g-%s", sc.Name, method, o.Seed, o.Scale, hex.EncodeToString(h[:6]))
}

// RunCached returns the cached result of the same run when dir holds one, else runs it and stores the result
// (dir "" disables the cache).
func RunCached(ctx context.Context, sc *Scenario, method string, o Options, dir string) (Result, bool, error) {
	o.fill()
	if dir == "" {
		r, err := Run(ctx, sc, method, o)
		return r, false, err
	}
	p := filepath.Join(dir, cacheKey(sc, method, o)+".json")
	if b, err := os.ReadFile(p); err == nil {
		var r Result
		if json.Unmarshal(b, &r) == nil && r.Method == method {
			return r, true, nil
		}
	}
	r, err := Run(ctx, sc, method, o)
	if err != nil {
		return r, false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, false, fmt.Errorf("cannot make cache %s: %w", dir, err)
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return r, false, fmt.Errorf("cannot write cache %s: %w", p, err)
	}
	return r, false, nil
}
