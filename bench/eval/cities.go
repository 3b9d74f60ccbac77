package eval

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"citybrain/geo"
)

// The corpus: road networks the engine is scored on, each with near-capacity demand, loops, signal programs
// and the SUMO options every run shares. A city is built once into the cache directory (networks, detector
// files, per-seed demand) and then reused by every run.

// city is one road network of the corpus.
type city struct {
	Name string
	// What: where the network and demand come from (for the report).
	What string
	// Period is randomTrips.py's period (s between departures) for generated demand, chosen so the network
	// runs near capacity over the corpus's 60-min runs: without blockages the vehicles in it and their mean
	// speed level off (from 25–30 to 55–60 min at most ×1.1 vehicles and ×0.9 speed, seeds 1 and 2; since c4
	// seed 3 too), with blockages queues stand at red lights and spill back. 0: the scenario's own demand.
	// Measured with the corpus health harness, one period at a time (docs/incidents.md "The corpus against the
	// issue's conditions (session 9)", "The corpus, version c3 (session 10)", "… c4 (session 11)" and "… c5
	// (session 15)": spider with priority T-junctions degrades at 0.4 on seed 2, levels at 0.45): the c2
	// periods let spider gridlock and monaco, random and nanchang degrade; hangzhou's stood from its split
	// crossings, not its demand (joinSplitCrossings), and once joined ran below capacity at 1.1 (its closures
	// spilled onto a feeder in 1 of 12): 0.9 degrades on seed 3, 1.0 levels on all three. Monaco runs light at
	// 1.2 because at 1.0–1.1 one one-lane residential approach (-3552#0) that yields at an unsignalised
	// junction to a main road runs out of gaps and its queue spreads from minute 20–25: a cliff, not a
	// period to sit on.
	Period float64
	build  func(ctx context.Context, b *builder) error
}

// cities is the corpus in its fixed order.
var cities = []city{
	{Name: "bologna", What: "Bologna Andrea Costa (OSM, DLR): the scenario's own demand from real counts, buses, signal programs and its 58 real loop sites", build: buildBologna},
	{Name: "monaco", What: "Monaco centre (OSM MoST extract, netconvert with the OSM signals), randomTrips demand", Period: 1.2, build: buildMonaco},
	{Name: "hangzhou", What: "Hangzhou east of West Lake (City Brain roadnet via SUMO's citybrain_road.py, its split crossings joined: 174 signals), randomTrips demand", Period: 1.0, build: buildCityBrain("hangzhou")},
	{Name: "nanchang", What: "Nanchang piece, 36 intersections (City Brain warm-up roadnet via citybrain_road.py), randomTrips demand", Period: 0.75, build: buildCityBrain("nanchang-small")},
	{Name: "grid", What: "netgenerate grid 7×7, 200 m blocks, 2 lanes, every junction signalised", Period: 0.3, build: buildNetgen("grid")},
	{Name: "spider", What: "netgenerate spider, 8 arms × 5 rings, 150 m, 2 lanes, signals at the crossings, the T-junctions give way", Period: 0.45, build: buildNetgen("spider")},
	{Name: "random", What: "netgenerate random, 120 iterations, 1–3 lanes, signals guessed (about half the junctions), the others give way", Period: 1.2, build: buildNetgen("random")},
}

// extraCities are cities outside the corpus: never in CityNames, the default city list or any
// leave-one-city-out training set, built and scored only when named with --cities (Config.Cities). They
// measure a model on a kind of network the corpus lacks without moving the corpus's cache or baselines.
//
// town: until corpus c4 the corpus's generated cities signalised every junction (--default-junction-type
// traffic_light) and only Bologna, Monaco and Nanchang put closures on links ending at an unsignalised
// junction, so the detector's signal feature was the corpus's largest tell (docs/incidents.md, "features whose
// 'nothing learned' reading is a tell"; c5 gives spider and random priority junctions). The town stays outside
// the corpus as the check on a network unlike any of its cities: its junctions mostly give way without a
// signal (about one in ten signalised; random's half, spider's three in five): a netgenerate random
// network (a random one rather than a grid: T-junctions, dead ends and uneven blocks as in a town) of
// priority junctions, 1–2 lanes, where netgenerate's signal guess puts a signal only where the incoming
// lanes' speeds sum to 90 m/s or more (about seven 50-km/h lanes: where two-lane roads cross), 12 of 119
// junctions that are not dead ends.
//
// suburb (session 16): a second check outside the corpus, since one city is one draw. Unlike the town (a
// random net) and the corpus's grid (a 7×7 signal grid of 200-m blocks, 2 lanes everywhere), it is a grid
// of long, uneven blocks (110 m one way, 230 m the other, every node moved at random by netgenerate's
// 20-m perturbation: streets meet at slight angles and blocks differ), each street 1 or 2 lanes drawn by
// netgenerate (so a street may run 2 lanes one way and 1 the other), 150-m stubs where the grid ends (the
// roads out of the suburb, where trips begin and end), junctions that give way, and signals only where
// netgenerate's guess finds two wide streets crossing (incoming lanes' speeds ≥ 90 m/s): 12 of 54
// junctions that are not dead ends, a share between the town's (one in ten) and random's (half).
//
// downtown (session 17): the dense check. The town and the suburb run light (30–31 km/h: their priority
// junctions run out of gaps long before their streets fill), so no model raises a false alarm there and they
// cannot tell a loose operating point from a safe one. The downtown runs near capacity (18 km/h) on one-way
// streets, short blocks and a signal at every junction (downtown.go).
var extraCities = []city{
	{Name: "town", What: "netgenerate random town, 150 iterations, 100–250 m, 1–2 lanes, priority junctions, signals guessed only where the incoming lanes' speeds sum to ≥ 90 m/s (outside the corpus)", Period: townPeriod, build: buildNetgen("town")},
	{Name: "suburb", What: "netgenerate grid 9×6 of long uneven blocks (110 × 230 m, nodes moved at random by a 20-m perturbation), 1–2 lanes drawn per street, 150-m stubs out of its edge, priority junctions, signals guessed only where the incoming lanes' speeds sum to ≥ 90 m/s (outside the corpus)", Period: suburbPeriod, build: buildNetgen("suburb")},
	{Name: "downtown", What: "a downtown of one-way streets near capacity: 8 avenues × 8 streets, uneven blocks (avenues 130–190 m apart, streets 95–145 m), one-way avenues of 2 lanes and one-way streets of 1 alternating in direction, a two-way boulevard and a two-way crosstown street of 2 + 2 lanes, every junction signalised, 150-m two-way stubs out of its edge (outside the corpus)", Period: downtownPeriod, build: buildDowntown},
}

// outsideSignalThreshold is the town's and the suburb's signal guess (netgenerate --tls.guess.threshold, in m/s
// as spiderSignalThreshold): a junction gets a signal only where two wide streets cross, so most give way.
const outsideSignalThreshold = 90

// spiderSignalThreshold is the spider's signal guess (netgenerate --tls.guess.threshold, the sum of the incoming
// lanes' speeds in m/s at which a junction gets a signal): its 2-lane roads meet at four-way crossings (4 × 2 ×
// 13.89 = 111 m/s in) on the middle rings and at T-junctions (83 m/s in) where the arms end on the inner ring and
// meet the outer one; any threshold between the two signalises the crossings and leaves the T-junctions to give
// way (priority), as most cities do (corpus c5; before it every junction was a signal).
const spiderSignalThreshold = 90

// townPeriod is the town's randomTrips period, by the corpus's rule (city.Period), seed 1 without blockages
// (docs/incidents.md, "a town of unsignalised junctions"): at 1.2 the vehicles in it grow from minute 45
// (×1.14 vehicles, ×0.91 speed from 25–30 to 55–60 min); at 1.5 they level off (×1.03, ×1.00).
const townPeriod = 1.5

// suburbPeriod is the suburb's randomTrips period, by the corpus's rule (city.Period), seeds 1–3 without
// blockages (docs/incidents.md, "a second city outside the corpus"): at 0.6 seed 1 gridlocks (×2.47 vehicles,
// ×0.34 speed from 25–30 to 55–60 min); at 0.7 seeds 1–2 level off (×1.04/×0.97, ×0.94/×1.04) but seed 3
// does not (×1.20, ×0.79); at 0.8 all three level off (×1.00/×1.02, ×1.01/×1.00, ×0.99/×1.06).
const suburbPeriod = 0.8

func cityByName(name string) (*city, bool) {
	for _, list := range [][]city{cities, extraCities} {
		for i := range list {
			if list[i].Name == name {
				return &list[i], true
			}
		}
	}
	return nil, false
}

// allCityNames lists the corpus's cities in order, then the cities outside it.
func allCityNames() []string { return append(CityNames(), OutsideCityNames()...) }

// OutsideCityNames lists the cities outside the corpus, scored only when named (extraCities).
func OutsideCityNames() []string { return cityNames(extraCities) }

// CityNames lists the corpus's cities in order.
func CityNames() []string { return cityNames(cities) }

// cityNames lists the names of list in order.
func cityNames(list []city) []string {
	out := make([]string, len(list))
	for i, c := range list {
		out[i] = c.Name
	}
	return out
}

// builder builds one city into its directory of the cache.
type builder struct {
	cfg  *Config
	dir  string // the city's directory
	city *city
	// Set by build:
	net         string   // the .net.xml, relative to dir
	additionals []string // additional files (vtypes, tls, bus stops), relative to dir
	detectors   string   // the e1 detector definitions, relative to dir (freq E1PeriodS, file e1.xml)
	routes      []string // fixed route files (the scenario's own demand), relative to dir
}

// cityFiles is a built city: what a SUMO run of it needs.
type cityFiles struct {
	Dir         string
	Net         string
	Additionals []string
	Detectors   string
	Routes      []string
	Period      float64
	// Load is the demand's period factor of a training-only run at a heavier load (heavier): 0 for the
	// corpus's own runs. randomTrips demand runs at Period × Load; a scenario's own demand is scaled by
	// SUMO's --scale 1/Load.
	Load float64
	net  *geo.Network
}

// heavier is the city at a heavier load: its demand's period times load (< 1: more vehicles), for the runs the
// detector is trained on and never scored on (Config.Heavy).
func (cf *cityFiles) heavier(load float64) *cityFiles {
	h := *cf
	h.Load = load
	if h.Period > 0 {
		h.Period *= load
	}
	return &h
}

// loadTag names a heavier run's load in its demand's file name and its run key ("" for the corpus's own).
func (cf *cityFiles) loadTag() string {
	if cf.Load == 0 {
		return ""
	}
	return "x" + strconv.FormatFloat(cf.Load, 'f', -1, 64)
}

// buildCity builds c into cache/cities/NAME (once: a city whose files exist is not built again) and loads
// its network.
func buildCity(ctx context.Context, cfg *Config, c *city) (*cityFiles, error) {
	dir := filepath.Join(cfg.cacheDir(), "cities", c.Name)
	stamp := filepath.Join(dir, "built-"+corpusVersion)
	b := &builder{cfg: cfg, dir: dir, city: c}
	if _, err := os.Stat(stamp); err != nil {
		if err := keepPreparedCorpus(dir); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("cannot clear the city dir (%s): %w", dir, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create the city dir (%s): %w", dir, err)
		}
		fmt.Fprintf(cfg.Log, "eval: building %s in %s\n", c.Name, dir)
		if err := c.build(ctx, b); err != nil {
			return nil, fmt.Errorf("cannot build city %s: %w", c.Name, err)
		}
		if b.detectors == "" {
			if err := b.placeLoops(); err != nil {
				return nil, err
			}
		}
		if err := writeFileLines(filepath.Join(dir, "files"), []string{b.net, b.detectors, strings.Join(b.additionals, ","), strings.Join(b.routes, ",")}); err != nil {
			return nil, err
		}
		if err := os.WriteFile(stamp, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("cannot mark the city built: %w", err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "files"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the built city (%s): %w", dir, err)
	}
	lines := strings.Split(string(data), "\n")
	for len(lines) < 4 {
		lines = append(lines, "")
	}
	cf := &cityFiles{Dir: dir, Net: lines[0], Detectors: lines[1], Additionals: splitNonEmpty(lines[2]), Routes: splitNonEmpty(lines[3]), Period: c.Period}
	cf.net, err = geo.LoadSUMONetFile(filepath.Join(dir, cf.Net))
	if err != nil {
		return nil, fmt.Errorf("cannot load the network of %s: %w", c.Name, err)
	}
	return cf, nil
}

// keepPreparedCorpus refuses to clear a city built by another corpus version in a prepared corpus: a cache
// whose cities directory (followed through a symlink, as private caches link a shared one) lies in a directory
// holding a READY file. Such a cache is shared (/work/team/cache-cN, its baseline and models beside it), and a
// binary of another corpus version would otherwise delete and rebuild its cities under everyone reading it. A
// cache without READY (the default one, a test's) is rebuilt as before.
func keepPreparedCorpus(dir string) error {
	old, _ := filepath.Glob(filepath.Join(dir, "built-*"))
	if len(old) == 0 {
		return nil
	}
	cities, err := filepath.EvalSymlinks(filepath.Dir(dir))
	if err != nil {
		return nil
	}
	root := filepath.Dir(cities)
	if _, err := os.Stat(filepath.Join(root, "READY")); err != nil {
		return nil
	}
	return fmt.Errorf("the city dir %s was built by corpus %s in the prepared corpus %s (READY), and this binary is corpus %s: "+
		"pass a cache of corpus %s (or a new directory) instead of rebuilding a shared one",
		dir, strings.TrimPrefix(filepath.Base(old[0]), "built-"), root, corpusVersion, corpusVersion)
}

func splitNonEmpty(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func writeFileLines(path string, lines []string) error {
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// tool runs a SUMO tool niced (the machine is shared) in dir, returning its error with the end of its output.
func tool(ctx context.Context, dir, name string, args ...string) error {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "nice", append([]string{"-n", "10", name}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SUMO_HOME="+sumoHome())
	out, err := cmd.CombinedOutput()
	if err != nil {
		s := string(out)
		if len(s) > 600 {
			s = "…" + s[len(s)-600:]
		}
		return fmt.Errorf("cannot run %s %s: %w (output %q)", name, strings.Join(args, " "), err, s)
	}
	return nil
}

func sumoHome() string {
	if h := os.Getenv("SUMO_HOME"); h != "" {
		return h
	}
	return "/usr/share/sumo"
}

func copyFile(dst, src string, edit func([]byte) []byte) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("cannot copy %s: %w", src, err)
	}
	if edit != nil {
		data = edit(data)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	return nil
}

var (
	freqAttr = regexp.MustCompile(`freq="[0-9.]*"`)
	fileAttr = regexp.MustCompile(`file="[^"]*"`)
)

// loopFile rewrites e1 definitions to report every E1PeriodS into e1.xml.
func loopFile(data []byte) []byte {
	s := freqAttr.ReplaceAllString(string(data), fmt.Sprintf(`freq="%d"`, E1PeriodS))
	return []byte(fileAttr.ReplaceAllString(s, `file="e1.xml"`))
}

func buildBologna(_ context.Context, b *builder) error {
	src := filepath.Join(b.cfg.DataRoot, bolognaDir)
	for _, f := range []string{"acosta_buslanes.net.xml", "acosta.rou.xml", "acosta_busses.rou.xml", "acosta_vtypes.add.xml",
		"acosta_bus_stops.add.xml", "acosta_tls.add.xml"} {
		if err := copyFile(filepath.Join(b.dir, f), filepath.Join(src, f), nil); err != nil {
			return err
		}
	}
	if err := copyFile(filepath.Join(b.dir, "detectors.add.xml"), filepath.Join(src, "acosta_detectors.add.xml"), loopFile); err != nil {
		return err
	}
	b.net, b.detectors = "acosta_buslanes.net.xml", "detectors.add.xml"
	b.additionals = []string{"acosta_vtypes.add.xml", "acosta_bus_stops.add.xml", "acosta_tls.add.xml"}
	b.routes = []string{"acosta.rou.xml", "acosta_busses.rou.xml"}
	return nil
}

// Monaco's centre: the MoST OSM extract cut to the principality (the whole extract, with the A8 and the
// hills behind, is five times larger and mostly empty road).
const monacoBox = "7.405,43.727,7.440,43.752"

// osmTypeFiles are the road types of an OSM city: netconvert's defaults, whose speeds are the rural limits
// (tertiary 80 km/h, secondary and primary 100 km/h), overridden by the built-up area's limit (50 km/h on every
// road from primary down; motorways keep theirs) that SUMO ships as osmNetconvertUrbanDe.typ.xml. A way's own
// maxspeed tag still wins. Every road of a city is inside a built-up area; Monaco's OSM ways carry no maxspeed
// at all, and with the rural limits a one-lane street yielding to an 80-km/h road (-3552#0) made the city
// degrade over its hour without blockages (docs/incidents.md, "The corpus, version c4").
func osmTypeFiles() string {
	dir := filepath.Join(sumoHome(), "data", "typemap")
	return filepath.Join(dir, "osmNetconvert.typ.xml") + "," + filepath.Join(dir, "osmNetconvertUrbanDe.typ.xml")
}

func buildMonaco(ctx context.Context, b *builder) error {
	src := filepath.Join(b.cfg.DataRoot, "sumo", "monaco", "network.osm")
	b.net = "monaco.net.xml"
	return tool(ctx, b.dir, "netconvert", "--osm-files", src, "--type-files", osmTypeFiles(),
		"--geometry.remove", "--roundabouts.guess", "--ramps.guess", "--junctions.join", "--tls.guess-signals", "--tls.join",
		"--keep-edges.in-geo-boundary", monacoBox, "--keep-edges.by-vclass", "passenger", "--remove-edges.isolated",
		"--no-warnings", "-o", b.net)
}

func buildCityBrain(name string) func(context.Context, *builder) error {
	return func(ctx context.Context, b *builder) error {
		src := filepath.Join(b.cfg.DataRoot, "citybrain", name, "roadnet.txt")
		b.net = name + ".net.xml"
		script := filepath.Join(sumoHome(), "tools", "import", "citybrain", "citybrain_road.py")
		// citybrain_road.py (SUMO 1.15) exits 1 after "Success." when netconvert printed warnings: the net is
		// written all the same.
		imported := name + ".imported.net.xml"
		err := tool(ctx, b.dir, "python3", script, "-n", src, "-o", imported)
		if _, serr := os.Stat(filepath.Join(b.dir, imported)); serr != nil {
			return fmt.Errorf("cannot convert the %s roadnet: %v", name, err)
		}
		return joinSplitCrossings(ctx, b.dir, imported, b.net)
	}
}

// signalCycleS is the cycle netconvert gives every signal program it builds (its --tls.cycle.time default),
// the cycle of every program of the City Brain imports.
const signalCycleS = 90

// joinSplitCrossings writes the net out of a City Brain import with each crossing one signalised junction.
// The City Brain roadnets split a crossing into several signalised nodes 8–25 m apart, each with its own
// program: a vehicle stopped on the few metres between two of them blocks the cross street, and Hangzhou
// stands from minute 5 at any demand (docs/incidents.md, "The corpus, version c3"). netconvert's
// --junctions.join and --tls.join join most of them (one program per cluster); where it joins a cluster's
// signals but keeps its nodes apart, the joined program gives every approach a phase of its own and runs a
// cycle netconvert cannot bring to signalCycleS (272–280 s, reds of 240 s in Hangzhou): such a cluster is
// joined into one junction instead (a <join> of its nodes), whose program has the usual cycle. Repeated until
// every program runs signalCycleS; the nodes joined are kept in join.nod.xml.
func joinSplitCrossings(ctx context.Context, dir, src, out string) error {
	args := []string{"-s", src, "--junctions.join", "true", "--tls.join", "true", "--tls.cycle.time", strconv.Itoa(signalCycleS)}
	var joins [][]string
	for pass := 0; ; pass++ {
		a := append([]string(nil), args...)
		if len(joins) > 0 {
			var sb strings.Builder
			sb.WriteString("<nodes>\n")
			for _, j := range joins {
				fmt.Fprintf(&sb, "    <join nodes=\"%s\"/>\n", strings.Join(j, " "))
			}
			sb.WriteString("</nodes>\n")
			if err := os.WriteFile(filepath.Join(dir, "join.nod.xml"), []byte(sb.String()), 0o644); err != nil {
				return fmt.Errorf("cannot write the joined crossings: %w", err)
			}
			a = append(a, "-n", "join.nod.xml")
		}
		if err := tool(ctx, dir, "netconvert", append(a, "--no-warnings", "-o", out)...); err != nil {
			return err
		}
		long, err := longSignalClusters(filepath.Join(dir, out), signalCycleS)
		if err != nil {
			return err
		}
		if len(long) == 0 {
			return nil
		}
		if pass == 2 {
			return fmt.Errorf("the net %s keeps %d signal programs longer than %d s after joining their nodes: %v", out, len(long), signalCycleS, long)
		}
		joins = append(joins, long...)
	}
}

// longSignalClusters returns, for each signal program of a net whose cycle is longer than cycleS, the
// junctions it controls (the ends of the edges its connections leave), sorted.
func longSignalClusters(path string, cycleS float64) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the net: %w", err)
	}
	defer f.Close()
	cycle := map[string]float64{}
	edgeTo := map[string]string{}
	nodes := map[string]map[string]bool{}
	d := xml.NewDecoder(bufio.NewReader(f))
	var tl string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read the net %s: %w", path, err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := func(name string) string {
			for _, a := range se.Attr {
				if a.Name.Local == name {
					return a.Value
				}
			}
			return ""
		}
		switch se.Name.Local {
		case "edge":
			if attr("function") != "internal" {
				edgeTo[attr("id")] = attr("to")
			}
		case "tlLogic":
			tl = attr("id")
			cycle[tl] += 0
		case "phase":
			v, err := strconv.ParseFloat(attr("duration"), 64)
			if err != nil {
				return nil, fmt.Errorf("cannot read the net %s: phase of %s: %w", path, tl, err)
			}
			cycle[tl] += v
		case "connection":
			if id := attr("tl"); id != "" {
				if nodes[id] == nil {
					nodes[id] = map[string]bool{}
				}
				nodes[id][attr("from")] = true
			}
		}
	}
	var ids []string
	for id, c := range cycle {
		if c > cycleS {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out [][]string
	for _, id := range ids {
		set := map[string]bool{}
		for e := range nodes[id] {
			if n := edgeTo[e]; n != "" {
				set[n] = true
			}
		}
		var ns []string
		for n := range set {
			ns = append(ns, n)
		}
		sort.Strings(ns)
		if len(ns) < 2 {
			return nil, fmt.Errorf("the net %s has a signal program of %.0f s (%s) at one junction: not a split crossing", path, cycle[id], id)
		}
		out = append(out, ns)
	}
	return out, nil
}

// Where the generated networks are placed on the globe (UTM zone 33 north, easting and northing of their
// origin): SUMO writes geo FCD and the engine map-matches in degrees, so each needs a projection.
var netgenOrigin = map[string][2]float64{"grid": {500000, 5000000}, "spider": {500000, 5010000}, "random": {500000, 5020000}, "town": {500000, 5030000}, "suburb": {500000, 5040000}, "downtown": {500000, 5050000}}

func buildNetgen(kind string) func(context.Context, *builder) error {
	return func(ctx context.Context, b *builder) error {
		b.net = kind + ".net.xml"
		// netgenerate's default junction type is priority: signals only where --tls.guess puts them. The grid
		// alone is a signal grid (every junction a traffic light, as in a downtown of signalised blocks).
		common := []string{"--default.speed", "13.89", "--no-turnarounds", "true", "-o", b.net}
		if kind == "grid" {
			common = append(common, "--default-junction-type", "traffic_light")
		}
		var args []string
		switch kind {
		case "grid":
			args = []string{"--grid", "--grid.number", "7", "--grid.length", "200", "--default.lanenumber", "2"}
		case "spider":
			args = []string{"--spider", "--spider.arm-number", "8", "--spider.circle-number", "5", "--spider.space-radius", "150",
				"--spider.omit-center", "--default.lanenumber", "2", "--tls.guess", "--tls.guess.threshold", strconv.Itoa(spiderSignalThreshold)}
		case "random":
			args = []string{"--rand", "--rand.iterations", "120", "--rand.min-distance", "120", "--rand.max-distance", "300",
				"--seed", "7", "--default.lanenumber", "2", "--rand.random-lanenumber", "--tls.guess"}
		case "town":
			args = []string{"--rand", "--rand.iterations", "150", "--rand.min-distance", "100", "--rand.max-distance", "250",
				"--seed", "11", "--default.lanenumber", "2", "--rand.random-lanenumber", "--tls.guess", "--tls.guess.threshold", strconv.Itoa(outsideSignalThreshold)}
		case "suburb":
			args = []string{"--grid", "--grid.x-number", "9", "--grid.y-number", "6", "--grid.x-length", "110", "--grid.y-length", "230",
				"--grid.attach-length", "150", "--perturb-x", "20", "--perturb-y", "20", "--seed", "13",
				"--default.lanenumber", "2", "--random-lanenumber", "--tls.guess", "--tls.guess.threshold", strconv.Itoa(outsideSignalThreshold)}
		}
		if err := tool(ctx, b.dir, "netgenerate", append(args, common...)...); err != nil {
			return err
		}
		o := netgenOrigin[kind]
		return placeNet(filepath.Join(b.dir, b.net), o[0], o[1])
	}
}

var locationRE = regexp.MustCompile(`<location [^>]*/>`)
var convRE = regexp.MustCompile(`convBoundary="([^"]*)"`)

// placeNet gives a generated network a UTM projection with its origin at (e, n) in zone 33.
func placeNet(path string, e, n float64) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot place the net: %w", err)
	}
	loc := locationRE.Find(data)
	m := convRE.FindSubmatch(loc)
	if loc == nil || m == nil {
		return fmt.Errorf("cannot place the net %s: no <location> with a convBoundary", path)
	}
	var cb [4]float64
	for i, p := range strings.Split(string(m[1]), ",") {
		if i < 4 {
			cb[i], _ = strconv.ParseFloat(p, 64)
		}
	}
	const zone = 33
	sw := geo.UTMToLatLng(geo.UTMZone{Zone: zone}, cb[0]+e, cb[1]+n)
	ne := geo.UTMToLatLng(geo.UTMZone{Zone: zone}, cb[2]+e, cb[3]+n)
	repl := fmt.Sprintf(`<location netOffset="%.2f,%.2f" convBoundary="%s" origBoundary="%.6f,%.6f,%.6f,%.6f" projParameter="+proj=utm +zone=%d +ellps=WGS84 +datum=WGS84 +units=m +no_defs"/>`,
		-e, -n, m[1], sw.Lng, sw.Lat, ne.Lng, ne.Lat, zone)
	data = locationRE.ReplaceAll(data, []byte(repl))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("cannot place the net: %w", err)
	}
	return nil
}

// Loops on a city without its own: on 10–30 links (about one link in twelve), every lane, at a random point
// at least 20 m from either end, reporting every E1PeriodS.
func (b *builder) placeLoops() error {
	nt, err := readSUMONet(filepath.Join(b.dir, b.net))
	if err != nil {
		return err
	}
	var cands []*netEdge
	for i := range nt.edges {
		e := &nt.edges[i]
		if e.carLanes() > 0 && e.length() >= 80 {
			cands = append(cands, e)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].ID < cands[j].ID })
	n := min(30, max(10, len(nt.edges)/12), len(cands))
	rng := rand.New(rand.NewPCG(nameSeed(b.city.Name), 3))
	rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	var sb strings.Builder
	sb.WriteString("<additional>\n")
	for _, e := range cands[:n] {
		pos := 20 + rng.Float64()*(e.length()-40)
		for _, l := range e.Lanes {
			fmt.Fprintf(&sb, "    <e1Detector id=\"loop_%s_%d\" lane=\"%s\" pos=\"%.1f\" freq=\"%d\" file=\"e1.xml\"/>\n", e.ID, l.Index, l.ID, math.Min(pos, l.LengthM-1), E1PeriodS)
		}
	}
	sb.WriteString("</additional>\n")
	b.detectors = "detectors.add.xml"
	return os.WriteFile(filepath.Join(b.dir, b.detectors), []byte(sb.String()), 0o644)
}

func nameSeed(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// demand returns the route files of one seed of a city: the scenario's own, or randomTrips.py's (made once
// per seed and kept in the city's directory).
func (cf *cityFiles) demand(ctx context.Context, seed int64, endS float64) ([]string, error) {
	if cf.Period == 0 {
		return cf.Routes, nil // a heavier load scales them in the run (runSim)
	}
	name := fmt.Sprintf("demand-s%d-%.0f%s.rou.xml", seed, endS, cf.loadTag())
	if _, err := os.Stat(filepath.Join(cf.Dir, name)); err == nil {
		return []string{name}, nil
	}
	tmp := fmt.Sprintf("tmp-s%d%s.rou.xml", seed, cf.loadTag())
	err := tool(ctx, cf.Dir, "python3", filepath.Join(sumoHome(), "tools", "randomTrips.py"), "-n", cf.Net, "-r", tmp,
		"-o", fmt.Sprintf("trips-s%d%s.xml", seed, cf.loadTag()), "--period", strconv.FormatFloat(cf.Period, 'f', -1, 64),
		"--fringe-factor", "5", "--min-distance", "300", "--seed", strconv.FormatInt(seed, 10), "--validate",
		"-b", "0", "-e", strconv.FormatFloat(endS, 'f', 0, 64), "--vclass", "passenger",
		"--trip-attributes", `departLane="best" departSpeed="max"`)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(cf.Dir, tmp), filepath.Join(cf.Dir, name)); err != nil {
		return nil, fmt.Errorf("cannot keep the demand: %w", err)
	}
	return []string{name}, nil
}
