package eval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"encoding/xml"
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
	"sort"
	"strconv"
	"strings"
	"time"

	"citybrain/engine"
	"citybrain/geo"
	"citybrain/ingest/sumo"
)

// bolognaDir is the SUMO scenario under the data root (read-only: it is copied before every run).
const bolognaDir = "sumo/bologna-acosta"

// The Bologna runs: probes, loops, blockages, synthetic cameras and calls.
const (
	// ProbeShare of ordinary vehicles carry SUMO's fcd device (deterministic assignment); each reports
	// every ProbeIntervalS with a per-vehicle phase (the ingest/sumo adapter's Interval).
	ProbeShare     = 0.3
	ProbeIntervalS = 5.0
	E1PeriodS      = 60 // loop aggregation period
	warmS          = 600.0
	blockGapS      = 600.0 // start to start
	blockMinS      = 360.0
	blockMaxS      = 600.0
	blockSpacingM  = 600.0 // consecutive blockages at least this far apart, so matching is unambiguous
	minEdgeLenM    = 80.0
	cameraRangeM   = 150.0 // a camera sees a blockage this close
	camDetectP     = 0.95  // a camera in range detects a blockage
	camFalsePerH   = 0.25  // false alarms per camera-hour
	blockerPrefix  = "cb_block_"
)

var bolognaStart = time.Date(2026, 11, 27, 8, 0, 0, 0, time.FixedZone("CET", 3600))

// blockage is one injected closure: stopped vehicles on one lane (partial) or every lane (full) of an edge.
type blockage struct {
	ID     string
	Class  string // partial_closure, full_closure
	Edge   string
	Lanes  []int
	NLanes int
	PosM   float64
	StartS float64
	DurS   float64
	Lat    float64
	Lng    float64
}

type netLane struct {
	ID      string
	Index   int
	LengthM float64
	Cars    bool // private cars may use it
}

type netEdge struct {
	ID    string
	Lanes []netLane
}

// readNetEdges streams a SUMO net and returns its normal (not internal) edges with their lanes.
func readNetEdges(path string) ([]netEdge, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open net (%s): %w", path, err)
	}
	defer f.Close()
	dec := xml.NewDecoder(bufio.NewReader(f))
	var out []netEdge
	var cur *netEdge
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read net (%s): %w", path, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			a := attrs(t)
			switch t.Name.Local {
			case "edge":
				if a["function"] == "" {
					out = append(out, netEdge{ID: a["id"]})
					cur = &out[len(out)-1]
				}
			case "lane":
				if cur == nil {
					continue
				}
				idx, _ := strconv.Atoi(a["index"])
				l, _ := strconv.ParseFloat(a["length"], 64)
				cars := true
				if al := a["allow"]; al != "" {
					cars = strings.Contains(al, "passenger") || strings.Contains(al, "private")
				}
				if dis := a["disallow"]; strings.Contains(dis, "passenger") || strings.Contains(dis, "private") || dis == "all" {
					cars = false
				}
				cur.Lanes = append(cur.Lanes, netLane{ID: a["id"], Index: idx, LengthM: l, Cars: cars})
			}
		case xml.EndElement:
			if t.Name.Local == "edge" {
				cur = nil
			}
		}
	}
	return out, nil
}

func attrs(t xml.StartElement) map[string]string {
	m := make(map[string]string, len(t.Attr))
	for _, a := range t.Attr {
		m[a.Name.Local] = a.Value
	}
	return m
}

var routeEdges = regexp.MustCompile(`edges="([^"]*)"`)

// routeCounts counts how many routes of the route file use each edge: the demand on it.
func routeCounts(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read routes (%s): %w", path, err)
	}
	out := map[string]int{}
	for _, m := range routeEdges.FindAllSubmatch(data, -1) {
		for _, e := range strings.Fields(string(m[1])) {
			out[e]++
		}
	}
	return out, nil
}

// planBlockages draws n blockages on busy edges, alternating full and partial closures (full first when
// fullFirst), one every blockGapS from warmS, each blockMinS..blockMaxS long and ending before endS.
func planBlockages(rng *rand.Rand, edges []netEdge, counts map[string]int, net *geo.Network, n int, fullFirst bool, endS float64) []blockage {
	type cand struct {
		e     *netEdge
		w     float64
		lanes []int
	}
	var partial, full []cand
	for i := range edges {
		e := &edges[i]
		c := counts[e.ID]
		if c < 150 || len(e.Lanes) == 0 || e.Lanes[0].LengthM < minEdgeLenM {
			continue
		}
		var cars, all []int
		for _, l := range e.Lanes {
			all = append(all, l.Index)
			if l.Cars {
				cars = append(cars, l.Index)
			}
		}
		if len(cars) == 0 {
			continue
		}
		full = append(full, cand{e: e, w: float64(c), lanes: all})
		if len(cars) >= 2 {
			partial = append(partial, cand{e: e, w: float64(c), lanes: cars[:1]})
		}
	}
	pick := func(cs []cand, prev *blockage) (cand, bool) {
		var sum float64
		for _, c := range cs {
			sum += c.w
		}
		for try := 0; try < 500 && sum > 0; try++ {
			x := rng.Float64() * sum
			for _, c := range cs {
				if x -= c.w; x > 0 {
					continue
				}
				if prev != nil {
					lat, lng := lanePos(net, c.e, c.lanes[0])
					if geo.DistanceM(geo.LatLng{Lat: lat, Lng: lng}, geo.LatLng{Lat: prev.Lat, Lng: prev.Lng}) < blockSpacingM {
						break
					}
				}
				return c, true
			}
		}
		return cand{}, false
	}
	var out []blockage
	for k := 0; k < n; k++ {
		start := warmS + float64(k)*blockGapS
		dur := blockMinS + rng.Float64()*(blockMaxS-blockMinS)
		dur = math.Round(min(dur, endS-30-start))
		if dur < 120 {
			break
		}
		isFull := (k%2 == 0) == fullFirst
		cs, class := partial, "partial_closure"
		if isFull {
			cs, class = full, "full_closure"
		}
		var prev *blockage
		if len(out) > 0 {
			prev = &out[len(out)-1]
		}
		c, ok := pick(cs, prev)
		if !ok {
			continue
		}
		b := blockage{ID: fmt.Sprintf("blk-%d", k+1), Class: class, Edge: c.e.ID, Lanes: c.lanes, NLanes: len(c.e.Lanes),
			PosM: math.Round(0.6 * c.e.Lanes[0].LengthM), StartS: start, DurS: dur}
		b.Lat, b.Lng = lanePos(net, c.e, c.lanes[0])
		out = append(out, b)
	}
	return out
}

func lanePos(net *geo.Network, e *netEdge, lane int) (float64, float64) {
	lat, lng, _ := net.LanePosition(fmt.Sprintf("%s_%d", e.ID, lane), math.Round(0.6*e.Lanes[0].LengthM))
	return lat, lng
}

// writeBlockers writes a route file with one stopping vehicle per blocked lane: it enters its lane at the start
// of the edge at the blockage's start time (SUMO's normal insertion checks, so it waits for a gap instead of
// being inserted onto another vehicle, which SUMO resolves by teleporting the blocker away and skipping its
// stop), drives to the blockage and stops there for the blockage's duration. The truth times are the stops
// SUMO reports, not this schedule.
func writeBlockers(path string, bs []blockage) error {
	var b strings.Builder
	b.WriteString("<routes>\n    <vType id=\"cb_blocker\" vClass=\"ignoring\" length=\"5\" minGap=\"1\"/>\n")
	type veh struct {
		depart float64
		text   string
	}
	var vs []veh
	for i, bl := range bs {
		for _, l := range bl.Lanes {
			id := fmt.Sprintf("%s%d_%d", blockerPrefix, i, l)
			vs = append(vs, veh{bl.StartS, fmt.Sprintf(`    <vehicle id=%q type="cb_blocker" depart="%.0f" departLane="%d" departPos="base" departSpeed="max">`+"\n"+
				`        <route edges=%q/>`+"\n"+`        <stop lane="%s_%d" startPos="%.1f" endPos="%.1f" duration="%.0f"/>`+"\n    </vehicle>\n",
				id, bl.StartS, l, bl.Edge, bl.Edge, l, bl.PosM-8, bl.PosM, bl.DurS)})
		}
	}
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].depart < vs[j].depart })
	for _, v := range vs {
		b.WriteString(v.text)
	}
	b.WriteString("</routes>\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("cannot write blockers (%s): %w", path, err)
	}
	return nil
}

// sumoRun is one SUMO run's output in events and truth.
// Exported fields, so Config.SUMOCache can store it with encoding/gob.
type sumoRun struct {
	Events  []engine.Event // probes, transit, detectors
	Truths  []Truth
	EndS    float64
	WallS   float64
	Notes   []string
	FCDStat sumo.FCDStats
}

// runSUMO copies the scenario to dir, adds the blockers, runs sumo for endS simulated seconds with FCD on its
// standard output (read as it is written: no FCD file), and converts FCD and e1 output into events.
func runSUMO(ctx context.Context, cfg *Config, net *geo.Network, dir string, seed int64, endS float64, bs []blockage) (*sumoRun, error) {
	src := filepath.Join(cfg.DataRoot, bolognaDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create SUMO dir (%s): %w", dir, err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("cannot list the scenario (%s): %w", src, err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".xml") && !strings.HasSuffix(e.Name(), ".sumocfg") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("cannot copy the scenario (%s): %w", e.Name(), err)
		}
		if e.Name() == "acosta_detectors.add.xml" {
			s := regexp.MustCompile(`freq="[0-9.]*"`).ReplaceAllString(string(data), fmt.Sprintf(`freq="%d"`, E1PeriodS))
			s = regexp.MustCompile(`file="[^"]*"`).ReplaceAllString(s, `file="e1.xml"`)
			data = []byte(s)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			return nil, fmt.Errorf("cannot copy the scenario (%s): %w", e.Name(), err)
		}
	}
	routes := "acosta.rou.xml,acosta_busses.rou.xml"
	if len(bs) > 0 {
		if err := writeBlockers(filepath.Join(dir, "blockers.rou.xml"), bs); err != nil {
			return nil, err
		}
		routes += ",blockers.rou.xml"
	}
	args := []string{"-c", "run.sumocfg", "--begin", "0", "--end", strconv.FormatFloat(endS, 'f', 0, 64),
		"--seed", strconv.FormatInt(seed, 10), "--route-files", routes,
		"--fcd-output", "/dev/stdout", "--fcd-output.geo", "true",
		"--device.fcd.probability", strconv.FormatFloat(ProbeShare, 'f', -1, 64), "--device.fcd.deterministic", "true",
		"--stop-output", "stops.xml", "--stop-output.write-unfinished", "true",
		"--tripinfo-output", "tripinfos.xml", "--log", "sumo.log", "--no-step-log", "true", "--no-warnings", "true"}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(sctx, cfg.SUMO, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SUMO_HOME="+sumoHome())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("cannot run sumo (pipe): %w", err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot run sumo (%s): %w", cfg.SUMO, err)
	}
	run := &sumoRun{EndS: endS}
	st, rerr := sumo.ReadFCD(bufio.NewReaderSize(out, 1<<20), sumo.FCDOptions{Start: bolognaStart, Interval: ProbeIntervalS,
		UTMZone: sumo.UTMZoneOf(net.Projection), IDPrefix: fmt.Sprintf("s%d-", seed)}, func(e engine.Event) error {
		if strings.Contains(e.ID, blockerPrefix) {
			return nil // the stopped vehicles are the incident, not probes
		}
		run.Events = append(run.Events, e)
		return nil
	})
	if rerr != nil {
		io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	run.WallS = round3(time.Since(t0).Seconds())
	run.FCDStat = st
	if werr != nil {
		return nil, fmt.Errorf("cannot run sumo (%s in %s; stderr %.300q): %w", strings.Join(args, " "), dir, stderr.String(), werr)
	}
	if rerr != nil {
		return nil, fmt.Errorf("cannot read sumo's FCD: %w", rerr)
	}
	// Loops.
	df, err := os.Open(filepath.Join(dir, "acosta_detectors.add.xml"))
	if err != nil {
		return nil, fmt.Errorf("cannot open the detectors: %w", err)
	}
	defs, err := sumo.ReadDetectors(df)
	df.Close()
	if err != nil {
		return nil, err
	}
	sites, err := sumo.PlaceDetectors(defs, net)
	if err != nil {
		return nil, err
	}
	ef, err := sumo.Open(filepath.Join(dir, "e1.xml"))
	if err != nil {
		return nil, fmt.Errorf("cannot open e1 output: %w", err)
	}
	_, err = sumo.ReadE1(ef, sumo.E1Options{Start: bolognaStart, Sites: sites}, func(e engine.Event) error {
		run.Events = append(run.Events, e)
		return nil
	})
	ef.Close()
	if err != nil {
		return nil, err
	}
	// Truth from the stops SUMO really made.
	stops, err := readStops(filepath.Join(dir, "stops.xml"))
	if err != nil {
		return nil, err
	}
	// A blockage starts when its first lane is blocked and ends when its last blocker leaves; one whose
	// blockers never stopped did not happen and is not a truth; a full closure with a lane that never
	// stopped is a partial one.
	for i, b := range bs {
		first, last := math.Inf(1), math.Inf(-1)
		stopped := 0
		for _, l := range b.Lanes {
			s, ok := stops[fmt.Sprintf("%s%d_%d", blockerPrefix, i, l)]
			if !ok {
				continue
			}
			stopped++
			first, last = math.Min(first, s[0]), math.Max(last, s[1])
		}
		if stopped == 0 {
			run.Notes = append(run.Notes, fmt.Sprintf("%s (%s on %s): no blocker stopped (SUMO could not insert it); not a truth", b.ID, b.Class, b.Edge))
			continue
		}
		class := b.Class
		if stopped < len(b.Lanes) {
			run.Notes = append(run.Notes, fmt.Sprintf("%s (%s on %s): %d of %d blockers stopped; scored as a partial closure", b.ID, b.Class, b.Edge, stopped, len(b.Lanes)))
			class = "partial_closure"
		}
		if last < first {
			last = first + b.DurS
		}
		run.Truths = append(run.Truths, Truth{ID: b.ID, Class: class, Type: map[bool]string{true: "crash", false: "stalled_vehicle"}[class == "full_closure"],
			Lat: b.Lat, Lng: b.Lng, Start: simTime(first), End: simTime(last), Lanes: b.NLanes, LanesBlocked: stopped,
			Where: fmt.Sprintf("edge %s, %.0f m", b.Edge, b.PosM)})
	}
	return run, nil
}

func simTime(s float64) time.Time {
	return bolognaStart.Add(time.Duration(s * float64(time.Second))).UTC()
}

func sumoHome() string {
	if h := os.Getenv("SUMO_HOME"); h != "" {
		return h
	}
	return "/usr/share/sumo"
}

// readStops returns [started, ended] (simulated s) of every stop in a SUMO stop output, by vehicle.
func readStops(path string) (map[string][2]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open stop output (%s): %w", path, err)
	}
	defer f.Close()
	out := map[string][2]float64{}
	dec := xml.NewDecoder(bufio.NewReader(f))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read stop output (%s): %w", path, err)
		}
		if t, ok := tok.(xml.StartElement); ok && t.Name.Local == "stopinfo" {
			a := attrs(t)
			s, err1 := strconv.ParseFloat(a["started"], 64)
			e, err2 := strconv.ParseFloat(a["ended"], 64)
			if err1 != nil {
				continue
			}
			if err2 != nil || e < 0 {
				e = math.NaN()
			}
			out[a["id"]] = [2]float64{s, e}
		}
	}
}

// camera is a synthetic video-analytics camera at a signalised junction.
type camera struct {
	ID string
	geo.LatLng
}

func cameras(net *geo.Network) []camera {
	var out []camera
	for _, n := range net.Nodes() {
		if n.Signalised {
			out = append(out, camera{ID: "cam-" + n.ID, LatLng: n.LatLng})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// nearestCamera returns the camera closest to p within cameraRangeM.
func nearestCamera(cams []camera, p geo.LatLng) (camera, bool) {
	best, bd := camera{}, cameraRangeM
	ok := false
	for _, c := range cams {
		if d := geo.DistanceM(p, c.LatLng); d <= bd {
			best, bd, ok = c, d, true
		}
	}
	return best, ok
}

// offset moves p by d metres at bearing deg.
func offset(p geo.LatLng, d, deg float64) geo.LatLng {
	r := deg * math.Pi / 180
	return geo.LatLng{Lat: p.Lat + d*math.Cos(r)/111_320, Lng: p.Lng + d*math.Sin(r)/(111_320*math.Cos(p.Lat*math.Pi/180))}
}

// videoEvents synthesises camera output for the truths (the camera within cameraRangeM detects a blockage
// with camDetectP, first 5–30 s after it starts, then every 20–60 s until it clears, confidence 0.6–0.9,
// position ± 5 m) and the cameras' false alarms (camFalsePerH per camera, confidence 0.30–0.55, within 30 m
// of the camera). It marks the truths that got video evidence.
func videoEvents(rng *rand.Rand, cams []camera, truths []Truth, spanS float64) []engine.Event {
	var out []engine.Event
	mk := func(cam camera, ts time.Time, p geo.LatLng, typ string, conf float64) engine.Event {
		e := engine.NewEvent(engine.KindVideo)
		e.TS, e.ID, e.Source, e.Type = ts.UnixMilli(), cam.ID, "video-analytics", typ
		e.Lat, e.Lng, e.Confidence = p.Lat, p.Lng, math.Round(conf*100)/100
		return e
	}
	for i := range truths {
		t := &truths[i]
		p := geo.LatLng{Lat: t.Lat, Lng: t.Lng}
		cam, ok := nearestCamera(cams, p)
		if !ok {
			continue
		}
		t.Camera = cam.ID
		if rng.Float64() >= camDetectP {
			continue
		}
		ts := t.Start.Add(time.Duration((5 + 25*rng.Float64()) * float64(time.Second)))
		for n := 0; n < 200 && ts.Before(t.End); n++ {
			out = append(out, mk(cam, ts, offset(p, 5*rng.Float64(), 360*rng.Float64()), t.Type, 0.6+0.3*rng.Float64()))
			t.VideoEvidence = true
			ts = ts.Add(time.Duration((20 + 40*rng.Float64()) * float64(time.Second)))
		}
	}
	types := []string{"stalled_vehicle", "debris", "pedestrian", "wrong_way", "crash"}
	for _, c := range cams {
		n := poisson(rng, camFalsePerH*spanS/3600)
		for k := 0; k < n; k++ {
			ts := bolognaStart.Add(time.Duration(rng.Float64() * spanS * float64(time.Second)))
			out = append(out, mk(c, ts, offset(c.LatLng, 30*rng.Float64(), 360*rng.Float64()), types[rng.IntN(len(types))], 0.30+0.25*rng.Float64()))
		}
	}
	return out
}

// reportEvents synthesises hotline calls: a full closure gets a call with p 0.85 (and 40% of those a second),
// a partial one with p 0.35; 60 s + an exponential delay (mean 2 min) after the start, 50–200 m off.
func reportEvents(rng *rand.Rand, truths []Truth) []engine.Event {
	var out []engine.Event
	n := 0
	for i := range truths {
		t := &truths[i]
		calls := 0
		full := t.Class == "full_closure"
		if full && rng.Float64() < 0.85 {
			calls = 1
			if rng.Float64() < 0.4 {
				calls = 2
			}
		} else if !full && rng.Float64() < 0.35 {
			calls = 1
		}
		for c := 0; c < calls; c++ {
			d := time.Duration((60 + min(rng.ExpFloat64()*120, 840)) * float64(time.Second))
			ts := t.Start.Add(d)
			if ts.After(t.End) {
				continue
			}
			n++
			p := offset(geo.LatLng{Lat: t.Lat, Lng: t.Lng}, 50+150*rng.Float64(), 360*rng.Float64())
			e := engine.NewEvent(engine.KindReport)
			e.TS, e.ID, e.Source, e.Lat, e.Lng = ts.UnixMilli(), fmt.Sprintf("call-112-%d", n), "hotline-112", p.Lat, p.Lng
			if full {
				e.Type, e.Severity, e.Text = "crash", int8(2+rng.IntN(3)), "road blocked, "+t.Where
			} else {
				e.Type, e.Severity, e.Text = "hazard", int8(1+rng.IntN(2)), "car stopped in a lane, "+t.Where
			}
			out = append(out, e)
			t.Reports++
		}
	}
	return out
}

func poisson(rng *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for k < 1000 {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
	return k
}

// runBologna runs the SUMO part: a run without incidents (false alarms) and, per seed, a run with blockages,
// each fed in its variants through a fresh system.
func runBologna(ctx context.Context, cfg *Config, rep *Report) error {
	src := filepath.Join(cfg.DataRoot, bolognaDir)
	netFile := filepath.Join(src, "acosta_buslanes.net.xml")
	net, err := geo.LoadSUMONetFile(netFile)
	if err != nil {
		return fmt.Errorf("cannot load the Bologna net: %w", err)
	}
	edges, err := readNetEdges(netFile)
	if err != nil {
		return err
	}
	counts, err := routeCounts(filepath.Join(src, "acosta.rou.xml"))
	if err != nil {
		return err
	}
	cams := cameras(net)
	endS := float64(cfg.sumoMinutes()) * 60
	root, err := os.MkdirTemp(cfg.TempDir, "citybrain-eval-sumo-")
	if err != nil {
		return fmt.Errorf("cannot create SUMO dir: %w", err)
	}
	defer os.RemoveAll(root)

	type plan struct {
		name     string
		seed     int64
		blocks   []blockage
		variants []string
		what     string
	}
	var plans []plan
	if cfg.Short {
		seed := cfg.Seeds[0]
		bs := planBlockages(rand.New(rand.NewPCG(uint64(seed), 7)), edges, counts, net, 1, true, endS)
		plans = append(plans, plan{"blockages", seed, bs, []string{"all"}, "one full closure"})
	} else {
		plans = append(plans, plan{"baseline", cfg.Seeds[0], nil, []string{"all", "traffic"}, "none (false alarms only)"})
		for _, seed := range cfg.Seeds {
			n := int((endS - warmS) / blockGapS)
			bs := planBlockages(rand.New(rand.NewPCG(uint64(seed), 7)), edges, counts, net, n, seed%2 == 1, endS)
			plans = append(plans, plan{"blockages", seed, bs, []string{"traffic", "video", "all"},
				fmt.Sprintf("%d closures, alternating full (all lanes) and partial (one lane), %.0f–%.0f min each, one every %.0f min from minute %.0f", len(bs), blockMinS/60, blockMaxS/60, blockGapS/60, warmS/60)})
		}
	}
	for _, p := range plans {
		fmt.Fprintf(cfg.Log, "eval: bologna/%s/seed%d: sumo, %.0f simulated s, %d blockages\n", p.name, p.seed, endS, len(p.blocks))
		run, err := cachedSUMO(ctx, cfg, net, filepath.Join(root, fmt.Sprintf("%s-%d", p.name, p.seed)), p.seed, endS, p.blocks)
		if err != nil {
			return err
		}
		fmt.Fprintf(cfg.Log, "eval: bologna/%s/seed%d: sumo took %.1f s, %d traffic events\n", p.name, p.seed, run.WallS, len(run.Events))
		for _, v := range p.variants {
			sc, err := feedBologna(ctx, cfg, net, cams, run, p.name, p.seed, v, p.what)
			if sc != nil {
				rep.add(sc)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// feedBologna feeds one variant of a SUMO run through a fresh system and scores it.
func feedBologna(ctx context.Context, cfg *Config, net *geo.Network, cams []camera, run *sumoRun, name string, seed int64, variant, what string) (*Scenario, error) {
	t0 := time.Now()
	sc := &Scenario{Name: fmt.Sprintf("bologna-%s/%s/seed%d", name, variant, seed), Source: "bologna", Variant: variant, Seed: seed,
		Incidents: what, Start: bolognaStart.UTC(), End: simTime(run.EndS), SimulatedS: run.EndS, Notes: append([]string(nil), run.Notes...)}
	sc.Notes = append(sc.Notes, fmt.Sprintf("sumo: %.1f s wall; FCD %d points, %d probe and %d transit events", run.WallS,
		run.FCDStat.Points, run.FCDStat.Probes, run.FCDStat.Transit))
	truths := append([]Truth(nil), run.Truths...)
	events := append([]engine.Event(nil), run.Events...)
	// The same seed gives the same cameras and calls in every variant that has them.
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	video := videoEvents(rng, cams, truths, run.EndS)
	calls := reportEvents(rand.New(rand.NewPCG(uint64(seed), 13)), truths)
	switch variant {
	case "all":
		events = append(append(events, video...), calls...)
	case "video":
		events = append(events, video...)
		for i := range truths {
			truths[i].Reports = 0
		}
	default:
		for i := range truths {
			truths[i].Reports, truths[i].VideoEvidence = 0, false
		}
	}
	fmt.Fprintf(cfg.Log, "eval: %s: feeding %d events\n", sc.Name, len(events))
	h, err := startSystem(ctx, net, cfg.TempDir)
	if err != nil {
		return nil, err
	}
	defer h.stop()
	sc.Feed, err = h.feed(ctx, events, BatchSpan)
	if err != nil {
		return sc, fmt.Errorf("cannot feed %s: %w", sc.Name, err)
	}
	if err := scoreScenario(ctx, h, sc, truths); err != nil {
		return sc, err
	}
	sc.WallS = round3(time.Since(t0).Seconds())
	fmt.Fprintf(cfg.Log, "eval: %s: %d events in %.1f s; %d/%d detected, %d false alarms\n", sc.Name, sc.Feed.Events,
		sc.WallS, sc.Metrics.Detected, sc.Metrics.Truths, sc.Metrics.FalseAlarms)
	return sc, nil
}

// cachedSUMO is runSUMO through cfg.SUMOCache: a run with the same seed, length and blockages is read back.
func cachedSUMO(ctx context.Context, cfg *Config, net *geo.Network, dir string, seed int64, endS float64, bs []blockage) (*sumoRun, error) {
	if cfg.SUMOCache == "" {
		return runSUMO(ctx, cfg, net, dir, seed, endS, bs)
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "v2|%d|%g|%g|%d|%+v", seed, endS, ProbeShare, E1PeriodS, bs)
	path := filepath.Join(cfg.SUMOCache, fmt.Sprintf("bologna-%d-%.0fs-%016x.gob", seed, endS, h.Sum64()))
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		var run sumoRun
		if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&run); err != nil {
			return nil, fmt.Errorf("cannot read the cached SUMO run %s (delete it to run SUMO again): %w", path, err)
		}
		fmt.Fprintf(cfg.Log, "eval: SUMO run read from the cache %s\n", path)
		return &run, nil
	}
	run, err := runSUMO(ctx, cfg, net, dir, seed, endS, bs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.SUMOCache, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the SUMO cache: %w", err)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(run); err != nil {
		return nil, fmt.Errorf("cannot encode the SUMO run for the cache: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write the SUMO cache: %w", err)
	}
	return run, os.Rename(tmp, path)
}
