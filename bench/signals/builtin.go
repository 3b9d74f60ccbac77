package signals

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Builtins are the shortcuts of `citybrain signals -net NAME`, with their default horizons (s).
var Builtins = map[string]int{
	"hangzhou":       2400, // City Brain Hangzhou, 247 signals; its flows end at 1,800 s
	"nanchang-small": 2400, // City Brain Nanchang warm-up piece, 36 intersections
	"bologna":        3600, // Bologna Andrea Costa, the scenario's own configuration
	"monaco":         2400, // Monaco (MoST) net from OSM, randomTrips demand to 1,800 s
	"grid":           2400, // netgenerate 5×5 signalised grid, randomTrips demand to 1,800 s
}

// BuiltinNames lists the shortcuts in a stable order.
func BuiltinNames() []string {
	n := make([]string, 0, len(Builtins))
	for k := range Builtins {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Builtin prepares a built-in scenario under work (converted nets and demand are cached there) from the shared
// data directory, with horizon endS (0: the default).
func Builtin(name, dataDir, work string, endS int) (*Scenario, error) {
	def, ok := Builtins[name]
	if !ok {
		return nil, fmt.Errorf("cannot load scenario %q: built-ins are %s (or give --sumocfg FILE)", name, strings.Join(BuiltinNames(), ", "))
	}
	if endS <= 0 {
		endS = def
	}
	dataDir, work = abs(dataDir), abs(work)
	dir := filepath.Join(work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make %s: %w", dir, err)
	}
	var cfg string
	var err error
	var extra []string
	switch name {
	case "hangzhou", "nanchang-small":
		cfg, err = cityBrain(filepath.Join(dataDir, "citybrain", name), dir)
		// The converted flows name some turns netconvert did not connect.
		extra = []string{"--ignore-route-errors", "true"}
	case "bologna":
		cfg = filepath.Join(dataDir, "sumo", "bologna-acosta", "run.sumocfg")
		if !exists(cfg) {
			err = fmt.Errorf("cannot find %s (set CITYBRAIN_DATA)", cfg)
		}
	case "monaco":
		cfg, err = monaco(filepath.Join(dataDir, "sumo", "monaco"), dir)
	case "grid":
		cfg, err = grid(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot prepare scenario %s: %w", name, err)
	}
	sc, err := FromConfig(name, cfg, work, endS)
	if err != nil {
		return nil, err
	}
	sc.Extra = extra
	return sc, nil
}

// cityBrain converts a City Brain roadnet and flows with SUMO's own importers. citybrain_road.py (SUMO 1.15)
// exits 1 after "Success." when netconvert printed warnings: the files are judged by their presence.
func cityBrain(src, dir string) (string, error) {
	net, rou, cfg := filepath.Join(dir, "city.net.xml"), filepath.Join(dir, "city.rou.xml"), filepath.Join(dir, "city.sumocfg")
	tools := filepath.Join(sumoHome(), "tools", "import", "citybrain")
	if !exists(net) {
		if err := run(dir, "python3", filepath.Join(tools, "citybrain_road.py"), "-n", filepath.Join(src, "roadnet.txt"), "-o", net); err != nil && !exists(net) {
			return "", fmt.Errorf("cannot convert roadnet (citybrain_road.py): %w", err)
		}
	}
	if !exists(rou) {
		if err := run(dir, "python3", filepath.Join(tools, "citybrain_flow.py"), "-f", filepath.Join(src, "flow.txt"), "-o", rou); err != nil && !exists(rou) {
			return "", fmt.Errorf("cannot convert flows (citybrain_flow.py): %w", err)
		}
	}
	return cfg, writeConfig(cfg, net, []string{rou}, nil)
}

// monaco builds the Monaco net from OpenStreetMap as the data's SOURCES.md says, and car demand with
// randomTrips.py (one trip every 1.2 s for 1,800 s between edges at least 800 m apart, routed by duarouter).
func monaco(src, dir string) (string, error) {
	net, rou, cfg := filepath.Join(dir, "monaco.net.xml"), filepath.Join(dir, "monaco.rou.xml"), filepath.Join(dir, "monaco.sumocfg")
	if !exists(net) {
		if err := run(dir, "netconvert", "--osm-files", filepath.Join(src, "network.osm"),
			"--type-files", filepath.Join(sumoHome(), "data", "typemap", "osmNetconvert.typ.xml"),
			"--geometry.remove", "--roundabouts.guess", "--ramps.guess", "--junctions.join", "--tls.guess-signals",
			"--tls.join", "-o", net); err != nil {
			return "", fmt.Errorf("cannot build the Monaco net (netconvert): %w", err)
		}
	}
	if err := randomTrips(dir, net, rou, "1.2", "--min-distance", "800", "--fringe-factor", "5"); err != nil {
		return "", err
	}
	return cfg, writeConfig(cfg, net, []string{rou}, nil)
}

// grid generates a 5×5 grid of signalised junctions, 200 m apart, two lanes each way with 150 m feeder
// roads, placed in UTM zone 51 (netgenerate nets have no geo-reference; CityBrain needs one), and demand
// from the fringe with randomTrips.py (one trip every 0.9 s for 1,800 s).
func grid(dir string) (string, error) {
	net, rou, cfg := filepath.Join(dir, "grid.net.xml"), filepath.Join(dir, "grid.rou.xml"), filepath.Join(dir, "grid.sumocfg")
	if !exists(net) {
		raw := filepath.Join(dir, "grid.raw.net.xml")
		if err := run(dir, "netgenerate", "--grid", "--grid.number", "5", "--grid.length", "200",
			"--grid.attach-length", "150", "-L", "2", "-S", "13.89", "-j", "traffic_light",
			"--tls.default-type", "static", "--no-turnarounds", "true", "-o", raw); err != nil {
			return "", fmt.Errorf("cannot generate the grid (netgenerate): %w", err)
		}
		if err := georeference(raw, net); err != nil {
			return "", err
		}
	}
	if err := randomTrips(dir, net, rou, "0.9", "--fringe-factor", "100", "--min-distance", "600"); err != nil {
		return "", err
	}
	return cfg, writeConfig(cfg, net, []string{rou}, nil)
}

var locationRE = regexp.MustCompile(`<location [^>]*/>`)

// georeference places a net without a projection in UTM zone 51 north (Hangzhou's) by rewriting its location.
func georeference(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", src, err)
	}
	loc := locationRE.Find(b)
	if loc == nil {
		return fmt.Errorf("cannot georeference %s: no <location>", src)
	}
	conv := regexp.MustCompile(`convBoundary="([^"]*)"`).FindSubmatch(loc)
	if conv == nil {
		return fmt.Errorf("cannot georeference %s: no convBoundary", src)
	}
	repl := fmt.Sprintf(`<location netOffset="-226000.00,-3349000.00" convBoundary="%s" origBoundary="0,0,0,0" projParameter="+proj=utm +zone=51 +ellps=WGS84 +datum=WGS84 +units=m +no_defs"/>`, conv[1])
	out := append(append(append([]byte(nil), b[:locIndex(b, loc)]...), repl...), b[locIndex(b, loc)+len(loc):]...)
	return os.WriteFile(dst, out, 0o644)
}

func locIndex(b, loc []byte) int { return strings.Index(string(b), string(loc)) }

// randomTrips writes routed random passenger trips (seed 42) departing every period s for 1,800 s.
func randomTrips(dir, net, rou, period string, extra ...string) error {
	if exists(rou) {
		return nil
	}
	args := append([]string{filepath.Join(sumoHome(), "tools", "randomTrips.py"), "-n", net, "-r", rou,
		"-o", filepath.Join(dir, "trips.xml"), "-b", "0", "-e", "1800", "-p", period, "--seed", "42",
		"--vehicle-class", "passenger", "--validate"}, extra...)
	if err := run(dir, "python3", args...); err != nil || !exists(rou) {
		return fmt.Errorf("cannot make demand (randomTrips.py): %v", err)
	}
	return nil
}

// writeConfig writes a minimal .sumocfg for built-in scenarios.
func writeConfig(path, net string, routes, adds []string) error {
	var b strings.Builder
	b.WriteString("<configuration>\n  <input>\n")
	fmt.Fprintf(&b, "    <net-file value=%q/>\n", net)
	fmt.Fprintf(&b, "    <route-files value=%q/>\n", strings.Join(routes, ","))
	if len(adds) > 0 {
		fmt.Fprintf(&b, "    <additional-files value=%q/>\n", strings.Join(adds, ","))
	}
	b.WriteString("  </input>\n  <time>\n    <begin value=\"0\"/>\n  </time>\n</configuration>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
