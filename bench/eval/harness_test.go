package eval

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"citybrain/engine/detect"
	"citybrain/geo"
)

// harnessConfig is the configuration of an opt-in diagnosis harness over an eval cache: the cache from the
// environment variable PREFIX_CACHE, the cities from PREFIX_CITIES and the seeds from PREFIX_SEEDS (comma
// lists; every corpus city and the given seeds by default; the cache defaults to the eval's, where a run not cached
// is simulated).
func harnessConfig(t *testing.T, prefix string, seeds ...int64) *Config {
	t.Helper()
	cfg := &Config{Cache: os.Getenv(prefix + "_CACHE"), DataRoot: os.Getenv("CITYBRAIN_DATA"), Seeds: seeds, Log: os.Stderr, NoDemo: true}
	if c := os.Getenv(prefix + "_CITIES"); c != "" {
		cfg.Cities = strings.Split(c, ",")
	}
	if s := os.Getenv(prefix + "_SEEDS"); s != "" {
		cfg.Seeds = nil
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("%s_SEEDS: %q is not a seed: %v", prefix, f, err)
			}
			cfg.Seeds = append(cfg.Seeds, v)
		}
	}
	cfg.fill()
	return cfg
}

// eachRun builds every city of cfg (calling built, when not nil, once per city) and runs each of its seeds
// (from the cache when it holds them), calling run for each.
func eachRun(t *testing.T, cfg *Config, built func(name string, cf *cityFiles), run func(name string, cf *cityFiles, seed int64, r *simRun)) {
	t.Helper()
	ctx := context.Background()
	for _, name := range cfg.Cities {
		c, ok := cityByName(name)
		if !ok {
			t.Fatalf("no city %q in the corpus", name)
		}
		cf, err := buildCity(ctx, cfg, c)
		if err != nil {
			t.Fatal(err)
		}
		if built != nil {
			built(name, cf)
		}
		for _, seed := range cfg.Seeds {
			r, err := simulate(ctx, cfg, c, cf, seed, float64(cfg.Minutes)*60)
			if err != nil {
				t.Fatal(err)
			}
			run(name, cf, seed, r)
		}
	}
}

// eachCity builds every city of cfg and hands run, once per city, the set of its runs (runSet: the runs from the
// cache when it holds them, each seed's warm-up as cfg says), so a harness extracts rows as the eval does.
func eachCity(t *testing.T, cfg *Config, run func(name string, cf *cityFiles, rs *runSet)) {
	t.Helper()
	for _, name := range cfg.Cities {
		c, ok := cityByName(name)
		if !ok {
			t.Fatalf("no city %q in the corpus", name)
		}
		cf, err := buildCity(t.Context(), cfg, c)
		if err != nil {
			t.Fatal(err)
		}
		run(name, cf, newRunSet(t.Context(), cfg, c, cf, float64(cfg.Minutes)*60))
	}
}

// onsets follows the engine's alarm rule (detect.Operating.Step) over a harness's rows, one link at a time, and
// reports the rows where a link's alarm begins. A row that is not judged (young, or past no gate) breaks the
// link's run as the engine's judge does.
type onsets struct {
	op  detect.Operating
	run map[onsetKey]*onsetRun
}

type onsetKey struct {
	link int32
	low  bool
}

type onsetRun struct {
	detect.Run
	on bool
}

func newOnsets(op detect.Operating) *onsets { return &onsets{op: op, run: map[onsetKey]*onsetRun{}} }

// step takes the link's probability at the row (below 0: not judged) and says whether its alarm begins there.
func (o *onsets) step(link int32, low bool, p float64) bool {
	k := onsetKey{link, low}
	r := o.run[k]
	if r == nil {
		r = &onsetRun{}
		o.run[k] = r
	}
	alarm, _ := o.op.Step(&r.Run, p)
	began := alarm && !r.on
	r.on = alarm
	return began
}

// judged is the probability the engine's judge gives a row (below 0 when it does not judge it).
func judged(m *detect.Model, x *[detect.NumFeatures]float64, young bool) float64 {
	if young || !detect.Gate(x) {
		return -1
	}
	return m.Prob(x)
}

// lineRoad is a straight road of six 300-m one-lane links (L0..L5, 50 km/h, every junction signalised) named
// name, and the point x metres along it.
func lineRoad(t *testing.T, name string) (*geo.Network, func(x float64) geo.LatLng) {
	t.Helper()
	const lat, lng = 30.25, 120.15
	mLng := 1 / (111320.0 * math.Cos(lat*math.Pi/180))
	pt := func(x float64) geo.LatLng { return geo.LatLng{Lat: lat, Lng: lng + x*mLng} }
	var nodes []geo.Node
	var links []geo.Link
	for i := 0; i <= 6; i++ {
		nodes = append(nodes, geo.Node{ID: fmt.Sprint("N", i), LatLng: pt(300 * float64(i)), Signalised: true})
	}
	for i := 0; i < 6; i++ {
		links = append(links, geo.Link{ID: fmt.Sprint("L", i), From: fmt.Sprint("N", i), To: fmt.Sprint("N", i+1), Lanes: 1,
			SpeedLimitKmh: 50, Geometry: []geo.LatLng{pt(300 * float64(i)), pt(300 * float64(i+1))}})
	}
	net, err := geo.NewNetwork(name, nodes, links)
	if err != nil {
		t.Fatal(err)
	}
	return net, pt
}
