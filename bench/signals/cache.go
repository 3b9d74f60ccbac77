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
const CacheVersion = "2026-12-08.1"

// PreemptVersion changes whenever the emergency vehicle's green wave changes (it keys only +preempt runs).
const PreemptVersion = "8"

// BaselineVersion changes whenever the runs of SUMO's own programs (fixed, actuated, delay_based) or their
// measurement change. Those runs do not depend on CityBrain's controller, feeds or decision period, so a change
// there (CacheVersion) does not rerun them.
const BaselineVersion = "2026-12-05.7"

// cacheKey names a run by everything that decides its outcome. A built-in scenario's configuration is written
// under the working directory, so it is named relative to it: the same run under another --work (two
// concurrent experiments each need their own) finds the same cached result.
func cacheKey(sc *Scenario, method string, o Options) string {
	return cacheKeyFor(sc, portableConfig(sc), method, o)
}

// legacyCacheKey is the key of caches written before CacheVersion 2026-12-07.1 (the configuration's absolute
// path).
func legacyCacheKey(sc *Scenario, method string, o Options) string {
	return cacheKeyFor(sc, sc.Config, method, o)
}

// portableConfig is the scenario's configuration path, relative to the working directory when it lies there.
func portableConfig(sc *Scenario) string {
	root := filepath.Dir(sc.Work)
	if rel, err := filepath.Rel(root, sc.Config); err == nil && !strings.HasPrefix(rel, "..") && sc.Work != "" {
		return "WORK/" + filepath.ToSlash(rel)
	}
	return sc.Config
}

func cacheKeyFor(sc *Scenario, config, method string, o Options) string {
	b, _ := json.Marshal(struct {
		V, Name, Config, Method string
		End, Begin              int
		O                       Options
	}{CacheVersion, sc.Name, config, method, sc.EndS, sc.BeginS, o})
	if isSUMOControlled(method) {
		b, _ = json.Marshal(struct {
			V, Name, Config, Method string
			End, Begin, Seed        int
			Scale                   float64
			SumoBinary              string
			NoEV                    bool
		}{BaselineVersion, sc.Name, config, method, sc.EndS, sc.BeginS, o.Seed, o.Scale, o.SumoBinary, o.NoEV})
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
	for _, q := range []string{p, filepath.Join(dir, legacyCacheKey(sc, method, o)+".json")} {
		b, err := os.ReadFile(q)
		if err != nil {
			continue
		}
		var r Result
		if json.Unmarshal(b, &r) == nil && r.Method == method {
			if q != p {
				_ = os.WriteFile(p, b, 0o644) // carried over to the portable key
			}
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
