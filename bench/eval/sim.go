package eval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest/sumo"
)

// corpusVersion changes whenever what a SUMO run produces changes, so cached runs of an older corpus are not
// read back (it names the built cities' stamp and keys every run). c3 (session 10): the periods that keep
// each network near capacity over the hour and the City Brain imports' split crossings joined. c4 (session
// 11): Hangzhou's period 1.0, the OSM cities' roads at the urban speed limit (Monaco), every per-event draw
// per city and seed (drawSeed). c5 (session 15): spider and random give way at part of their junctions
// (netgenerate's signal guess instead of a signal at every junction; spider's period 0.45), so closures on links
// ending at an unsignalised junction occur in generated cities too; the grid stays a signal grid. c6 (session
// 16): a partial closure squeezes traffic at its point only (pacers: slow vehicles of their own type held at the
// blocked point), not along its whole link, and the loops count every vehicle type but the pacers'.
const corpusVersion = "c6"

// The conditions of issue 12.
const (
	ProbeShare     = 0.15 // vehicles carrying a probe
	ProbeShareLow  = 0.05 // the low-penetration variant: a third of them
	ProbeIntervalS = 5    // a fix every 5 s, each vehicle with its own phase
	GPSNoiseM      = 3.0  // Gaussian position noise per axis
	HeadingNoise   = 5.0  // degrees
	E1PeriodS      = 30   // loop aggregation
	RerouteShare   = 0.25 // drivers who reroute around closures (SUMO's rerouting device, every 60 s)
	SpeedWindowS   = 300  // speed truth and readings per 300 s
	SquareM        = 150  // speed truth per 150 m square
	cameraShare    = 0.2  // cameras at a fifth of the signalised junctions
	cameraRangeM   = 100  // a camera sees vehicles this close to its junction
	countRangeM    = 30   // and counts those entering this circle, every countEveryS
	countEveryS    = 10
	stallS         = 120 // a vehicle standing this long in view raises a stall alarm
	stallRepeatS   = 60  // and again every minute it still stands
	standMps       = 0.5 // standing: slower than this
	camFalsePerH   = 0.3 // planted false alarms per camera-hour
)

// simStart is the clock time of simulation second 0 (a weekday morning).
var simStart = time.Date(2026, 11, 27, 7, 30, 0, 0, time.UTC)

func simTime(s float64) time.Time { return simStart.Add(time.Duration(s * float64(time.Second))) }

// Camera is a synthetic video-analytics camera at a signalised junction.
type Camera struct {
	ID  string
	Lat float64
	Lng float64
}

// SpeedObs is the vehicle-seconds of one unit (link, 150 m square or engine cell) in one 300-s window, every
// vehicle (not just probes) at every simulation second: the truth a speed estimate is scored against.
type SpeedObs struct {
	Window int32 // index of the window: [Window·300 s, (Window+1)·300 s)
	// L:<link id>, S:<x>,<y> (150 m squares from the network's south-west corner), C:<h3 cell>; P:<link id>
	// and Q:<link id> hold only the vehicles of the 15 % and the 5 % probe samples.
	Unit   string
	SumKmh float64
	VehS   float64
}

// simRun is one SUMO run of a city and seed, turned into the events and truths of every variant.
type simRun struct {
	City    string
	Seed    int64
	EndS    float64
	WallS   float64
	Probes  []engine.Event // ProbeShare of the vehicles, a noisy fix every ProbeIntervalS
	Low     []bool         // Probes[i] is one of the ProbeShareLow subset
	Transit []engine.Event // buses (always report, like the probes)
	Loops   []engine.Event
	Video   []engine.Event // counts, stall alarms, planted false alarms
	Cameras []Camera
	Truths  []Truth
	Speed   []SpeedObs
	Origin  geo.LatLng // south-west corner of the square grid
	Notes   []string
	Points  int // FCD points read
}

// planRun is a run's demand (its route files, built into the city's directory when missing) and the
// blockages planned on it: drawn on the network nt by the demand's counts, the same for every run of the city,
// seed and length.
func planRun(ctx context.Context, c *city, cf *cityFiles, nt *sumoNet, seed int64, endS float64) (routes []string, bs []blockage, err error) {
	routes, err = cf.demand(ctx, seed, endS)
	if err != nil {
		return nil, nil, err
	}
	var paths []string
	for _, r := range routes {
		paths = append(paths, filepath.Join(cf.Dir, r))
	}
	counts, err := routeCounts(paths)
	if err != nil {
		return nil, nil, err
	}
	return routes, planBlockages(rand.New(rand.NewPCG(uint64(seed), nameSeed(c.Name))), nt, counts, cf.net, seed, endS), nil
}

// runKey names a cached run.
func runKey(city string, seed int64, endS float64, bs []blockage) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%s|%d|%g|%g|%g|%d|%+v", corpusVersion, city, seed, endS, ProbeShare, GPSNoiseM, E1PeriodS, bs)
	return fmt.Sprintf("%s-s%d-%.0fs-%016x.gob", city, seed, endS, h.Sum64())
}

// simulate returns the run of city cf for seed, from the cache when it holds it.
func simulate(ctx context.Context, cfg *Config, c *city, cf *cityFiles, seed int64, endS float64) (*simRun, error) {
	nt, err := readSUMONet(filepath.Join(cf.Dir, cf.Net))
	if err != nil {
		return nil, err
	}
	routes, bs, err := planRun(ctx, c, cf, nt, seed, endS)
	if err != nil {
		return nil, err
	}
	// A heavier run is keyed by its load too (its name, e.g. monacox0.75, goes into the key; the corpus's own
	// runs keep their keys).
	path := filepath.Join(cfg.cacheDir(), "runs", runKey(c.Name+cf.loadTag(), seed, endS, bs))
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		var run simRun
		if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&run); err != nil {
			return nil, fmt.Errorf("cannot read the cached run %s (delete it to run SUMO again): %w", path, err)
		}
		fullFromEnd(&run, bs)
		return &run, nil
	}
	fmt.Fprintf(cfg.Log, "eval: %s%s/seed%d: running SUMO for %.0f simulated s with %d blockages\n", c.Name, cf.loadTag(), seed, endS, len(bs))
	run, err := runSim(ctx, cfg, c, cf, routes, seed, endS, bs)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "eval: %s%s/seed%d: SUMO took %.0f s; %d FCD points, %d probe fixes, %d truths\n", c.Name, cf.loadTag(), seed, run.WallS, run.Points, len(run.Probes), len(run.Truths))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the run cache: %w", err)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(run); err != nil {
		return nil, fmt.Errorf("cannot encode the run for the cache: %w", err)
	}
	if err := os.WriteFile(path+".tmp", buf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write the run cache: %w", err)
	}
	return run, os.Rename(path+".tmp", path)
}

// runSim runs SUMO on the city with the blockages, FCD of every vehicle on its standard output read as it is
// written, and turns it into probes, camera output and the speed truth; then reads the loops and the stops.
func runSim(ctx context.Context, cfg *Config, c *city, cf *cityFiles, routes []string, seed int64, endS float64, bs []blockage) (*simRun, error) {
	dir, err := os.MkdirTemp(cfg.TempDir, "citybrain-eval-sumo-")
	if err != nil {
		return nil, fmt.Errorf("cannot create the SUMO dir: %w", err)
	}
	defer os.RemoveAll(dir)
	abs := func(names []string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(cf.Dir, n))
		}
		return out
	}
	// The detector definitions go into the run's directory: SUMO writes e1.xml next to them. The loops count
	// every vehicle type of the run but the pacers' (loopTypes).
	types, err := loopTypes(append(abs(cf.Additionals), abs(routes)...))
	if err != nil {
		return nil, err
	}
	if err := copyFile(filepath.Join(dir, "detectors.add.xml"), filepath.Join(cf.Dir, cf.Detectors), func(d []byte) []byte { return withVTypes(d, types) }); err != nil {
		return nil, err
	}
	if err := writeBlockers(filepath.Join(dir, "blockers.rou.xml"), bs); err != nil {
		return nil, err
	}
	adds := append(abs(cf.Additionals), filepath.Join(dir, "detectors.add.xml"))
	rous := append(abs(routes), filepath.Join(dir, "blockers.rou.xml"))
	args := []string{"-n", "10", cfg.SUMO, "-n", filepath.Join(cf.Dir, cf.Net), "-a", strings.Join(adds, ","), "-r", strings.Join(rous, ","),
		"--begin", "0", "--end", strconv.FormatFloat(endS, 'f', 0, 64), "--seed", strconv.FormatInt(seed, 10),
		"--fcd-output", filepath.Join(dir, "fcd.pipe"), "--fcd-output.geo", "true", "--fcd-output.attributes", "x,y,angle,type,speed,pos,lane",
		"--stop-output", "stops.xml", "--stop-output.write-unfinished", "true",
		"--device.rerouting.probability", strconv.FormatFloat(RerouteShare, 'f', -1, 64), "--device.rerouting.period", "60",
		"--ignore-route-errors", "true", "--log", "sumo.log", "--no-step-log", "true", "--no-warnings", "true",
		"--duration-log.statistics", "true"}
	if cf.Load > 0 && cf.Period == 0 {
		// A scenario's own demand at a heavier load: every vehicle 1/Load times (randomTrips demand is made
		// at the shorter period instead, cityFiles.demand).
		args = append(args, "--scale", strconv.FormatFloat(1/cf.Load, 'f', 4, 64))
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(sctx, "nice", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SUMO_HOME="+sumoHome())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// FCD through a named pipe, read as SUMO writes it (its standard output carries its own messages).
	fifo := filepath.Join(dir, "fcd.pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("cannot create the FCD pipe: %w", err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot run sumo (%s): %w", cfg.SUMO, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	out, err := openFifo(ctx, fifo, waited)
	if err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	defer out.Close()
	run := &simRun{City: c.Name, Seed: seed, EndS: endS}
	p := newProcessor(run, cf.net, seed)
	p.zone = sumo.UTMZoneOf(cf.net.Projection)
	n, rerr := readFCDFast(out, p.point)
	if rerr == nil {
		rerr = p.err
	}
	run.Points = n
	if rerr != nil {
		io.Copy(io.Discard, out)
	}
	werr := <-waited
	run.WallS = round3(time.Since(t0).Seconds())
	if werr != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "sumo.log"))
		return nil, fmt.Errorf("cannot run sumo (%s in %s; stderr %.300q; log %.400q): %w", strings.Join(args, " "), dir, stderr.String(), tail(string(log), 400), werr)
	}
	if rerr != nil {
		return nil, fmt.Errorf("cannot read sumo's FCD: %w", rerr)
	}
	p.finish()
	for typ := range p.types {
		// A vehicle's own copy of its type (SUMO names it type@vehicle) is its type to a loop.
		if typ, _, _ = strings.Cut(typ, "@"); typ != pacerType && !slices.Contains(types, typ) {
			return nil, fmt.Errorf("vehicles of type %q ran but the loops do not count them (loopTypes: %v)", typ, types)
		}
	}
	if log, err := os.ReadFile(filepath.Join(dir, "sumo.log")); err == nil {
		if i := strings.Index(string(log), "Vehicles:"); i >= 0 {
			run.Notes = append(run.Notes, "sumo: "+strings.Join(strings.Fields(string(log[i:])), " "))
		}
	}
	// Loops.
	df, err := os.Open(filepath.Join(dir, "detectors.add.xml"))
	if err != nil {
		return nil, fmt.Errorf("cannot open the detectors: %w", err)
	}
	defs, err := sumo.ReadDetectors(df)
	df.Close()
	if err != nil {
		return nil, err
	}
	sites, err := sumo.PlaceDetectors(defs, cf.net)
	if err != nil {
		return nil, err
	}
	// SUMO 1.15 sometimes writes an occupancy over 100 % for 30-s intervals (a vehicle counted in two
	// intervals); a real controller caps it: so does the corpus.
	e1, err := os.ReadFile(filepath.Join(dir, "e1.xml"))
	if err != nil {
		return nil, fmt.Errorf("cannot open e1 output: %w", err)
	}
	e1 = occupancyRE.ReplaceAllFunc(e1, func(m []byte) []byte {
		v, err := strconv.ParseFloat(string(occupancyRE.FindSubmatch(m)[1]), 64)
		if err != nil || v <= 100 {
			return m
		}
		return []byte(`occupancy="100.00"`)
	})
	_, err = sumo.ReadE1(bytes.NewReader(e1), sumo.E1Options{Start: simStart, Sites: sites}, func(e engine.Event) error {
		run.Loops = append(run.Loops, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	stops, err := readStops(filepath.Join(dir, "stops.xml"))
	if err != nil {
		return nil, err
	}
	run.Truths = truthsOf(run, bs, stops)
	run.Video = append(run.Video, plantedFalseAlarms(c.Name, seed, run.Cameras, endS)...)
	return run, nil
}

var (
	vTypeID   = regexp.MustCompile(`<vType\b[^>]*?\bid="([^"]+)"`)
	e1Element = regexp.MustCompile(`<(e1Detector|inductionLoop)\b[^>]*>`) // SUMO's two names of an e1
)

// sumoDefaultTypes are the vehicle types SUMO defines without a file (a vehicle without a type is
// DEFAULT_VEHTYPE).
var sumoDefaultTypes = []string{"DEFAULT_VEHTYPE", "DEFAULT_PEDTYPE", "DEFAULT_BIKETYPE", "DEFAULT_CONTAINERTYPE", "DEFAULT_TAXITYPE", "DEFAULT_RAILTYPE"}

// loopTypes returns the vehicle types the loops count: SUMO's default types, every vType the files define and
// the blockers' (a broken-down vehicle passes loops upstream of its stop like any other), never the pacers' (a
// partial closure's squeeze, writeBlockers: not traffic). SUMO 1.15's e1Detector takes an include list only
// (vTypes), so the list is every other type; runSim checks every type the FCD showed is in it.
func loopTypes(files []string) ([]string, error) {
	set := map[string]bool{blockerType: true}
	for _, t := range sumoDefaultTypes {
		set[t] = true
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cannot read the vehicle types of %s: %w", f, err)
		}
		for _, m := range vTypeID.FindAllSubmatch(data, -1) {
			set[string(m[1])] = true
		}
	}
	delete(set, pacerType)
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// withVTypes gives every e1 definition without a vTypes attribute the types it counts.
func withVTypes(data []byte, types []string) []byte {
	attr := []byte(` vTypes="` + strings.Join(types, " ") + `"`)
	return e1Element.ReplaceAllFunc(data, func(m []byte) []byte {
		if bytes.Contains(m, []byte("vTypes=")) {
			return m
		}
		n := bytes.IndexAny(m, " \t\r\n/>")
		return append(append(append([]byte{}, m[:n]...), attr...), m[n:]...)
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// truthsOf turns the blockages SUMO really made into truths: a blockage starts when its first lane is blocked
// and ends when its last blocker leaves; one whose blockers never stopped did not happen; a full closure with
// a lane that never stopped is a partial one; a full closure is full when its last lane is blocked (Truth.Full).
func truthsOf(run *simRun, bs []blockage, stops map[string][2]float64) []Truth {
	var out []Truth
	for i, b := range bs {
		first, full, last := math.Inf(1), math.Inf(-1), math.Inf(-1)
		stopped := 0
		for _, lane := range b.Lanes {
			s, ok := stops[fmt.Sprintf("%s%d_%s", blockerPrefix, i, lane[strings.LastIndexByte(lane, '_')+1:])]
			if !ok {
				continue
			}
			stopped++
			first, full = math.Min(first, s[0]), math.Max(full, s[0])
			if !math.IsNaN(s[1]) {
				last = math.Max(last, s[1])
			}
		}
		if stopped == 0 {
			run.Notes = append(run.Notes, fmt.Sprintf("%s (%s, %s on %s): no blocker stopped; not a truth", b.ID, b.Class, b.Position, b.Edge))
			continue
		}
		class := b.Class
		if stopped < len(b.Lanes) {
			run.Notes = append(run.Notes, fmt.Sprintf("%s (%s on %s): %d of %d blockers stopped; scored as a partial closure", b.ID, b.Class, b.Edge, stopped, len(b.Lanes)))
			class = ClassPartial
		}
		if last < first {
			last = math.Min(first+b.DurS, run.EndS)
		}
		typ := "stalled_vehicle"
		if class == ClassFull {
			typ = "crash"
		}
		t := Truth{ID: b.ID, Class: class, Position: b.Position, Type: typ, Lat: b.Lat, Lng: b.Lng,
			Start: simTime(first), End: simTime(last), Lanes: len(b.Lanes) + len(b.Open), LanesBlocked: stopped,
			Where: fmt.Sprintf("edge %s, %.0f m", b.Edge, b.PosM), Link: b.Edge}
		if class == ClassFull {
			f := simTime(full)
			t.Full = &f
		}
		if cam, ok := nearestCamera(run.Cameras, geo.LatLng{Lat: b.Lat, Lng: b.Lng}); ok {
			t.Camera = cam.ID
		}
		out = append(out, t)
	}
	return out
}

// fullFromEnd gives the full closures of a run cached before truths carried Truth.Full (corpus c6's runs)
// when each became full, read from what the cache kept of the stop output: every blocker stops for its
// blockage's DurS (writeBlockers' stop duration), so a truth's end, its last lane's stop end, less DurS is
// that lane's stop start, the last lane closed (TestTheStopOutputKeepsWhenAClosureBecameFull checks it on
// SUMO's own output). The one stop it cannot see is one SUMO had not ended when the run ended (truthsOf
// takes the end from the ended stops): a lane closed more than 60 s late at a blockage the planner cut to
// end 60 s before the run. A truth that carries Full is kept as it is.
func fullFromEnd(run *simRun, bs []blockage) {
	dur := map[string]float64{}
	for _, b := range bs {
		dur[b.ID] = b.DurS
	}
	for i := range run.Truths {
		t := &run.Truths[i]
		d, ok := dur[t.ID]
		if t.Class != ClassFull || t.Full != nil || !ok {
			continue
		}
		f := t.End.Add(-time.Duration(d * float64(time.Second)))
		if f.Before(t.Start) {
			f = t.Start
		}
		t.Full = &f
	}
}

// readStops returns [started, ended] (simulated s; ended NaN while unfinished) of every stop by vehicle.
func readStops(path string) (map[string][2]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open stop output (%s): %w", path, err)
	}
	out := map[string][2]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, "<stopinfo ") {
			continue
		}
		id, s, e := xmlAttr(line, "id"), xmlAttr(line, "started"), xmlAttr(line, "ended")
		st, err := strconv.ParseFloat(s, 64)
		if err != nil || id == "" {
			continue
		}
		en, err := strconv.ParseFloat(e, 64)
		if err != nil || en < 0 {
			en = math.NaN()
		}
		out[id] = [2]float64{st, en}
	}
	return out, nil
}

func xmlAttr(line, name string) string {
	i := strings.Index(line, " "+name+"=\"")
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+3:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

// nearestCamera returns the camera closest to p within cameraRangeM.
func nearestCamera(cams []Camera, p geo.LatLng) (Camera, bool) {
	best, bd, ok := Camera{}, float64(cameraRangeM), false
	for _, c := range cams {
		if d := geo.DistanceM(p, geo.LatLng{Lat: c.Lat, Lng: c.Lng}); d <= bd {
			best, bd, ok = c, d, true
		}
	}
	return best, ok
}

// openFifo opens the read end of the FCD pipe; it fails instead of blocking forever when SUMO exits before
// opening the write end.
func openFifo(ctx context.Context, path string, waited chan error) (*os.File, error) {
	type res struct {
		f   *os.File
		err error
	}
	ch := make(chan res, 1)
	go func() {
		f, err := os.Open(path)
		ch <- res{f, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("cannot open the FCD pipe: %w", r.err)
		}
		return r.f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case err := <-waited:
		waited <- err // for the caller
		// Unblock the opener with a writer of our own.
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		if r := <-ch; r.f != nil {
			r.f.Close()
		}
		return nil, errors.New("cannot read SUMO's FCD: sumo exited before writing it")
	}
}

var occupancyRE = regexp.MustCompile(`occupancy="([^"]*)"`)

// errNoSUMO marks a missing simulator.
var errNoSUMO = errors.New("sumo is not installed (scripts/install-sumo.sh)")
