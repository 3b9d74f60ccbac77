package eval

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine"
	"citybrain/engine/schema"
	"citybrain/geo"
	"citybrain/ingest"
)

// TestSpeedDump is not a test but the offline harness of docs/incidents.md "Speeds, eighth pass": with
// CITYBRAIN_SPEED_DUMP=DIR it feeds every cached run of the corpus (CITYBRAIN_SPEED_DUMP_CITIES, default all;
// seeds 1 and 2; the cache CITYBRAIN_SPEED_DUMP_CACHE, default the eval's; a run not cached is simulated) through
// the engine at 15 % and 5 % probes as `citybrain eval` does, and writes to DIR, per city: CITY-links.csv (each
// link's length, lanes, free flow, signal at its end); per run: CITY-sSEED-truth.csv (the link truth of all
// vehicles, L:, and of the probe vehicles, P: and Q:), CITY-sSEED-PCT-fixes.csv (every matched probe, bus and
// loop row: link, position along it, speed, flow, occupancy) and CITY-sSEED-PCT-est.csv (every link's published
// estimate at each window end, with its sample, history and cell parts). scripts/speed-offline.py reads them.
func TestSpeedDump(t *testing.T) {
	out := os.Getenv("CITYBRAIN_SPEED_DUMP")
	if out == "" {
		t.Skip("the offline speed harness: set CITYBRAIN_SPEED_DUMP=DIR to run it")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eachRun(t, harnessConfig(t, "CITYBRAIN_SPEED_DUMP", 1, 2), func(name string, cf *cityFiles) {
		net := cf.net
		writeCSV(t, filepath.Join(out, name+"-links.csv"), "idx,link,len,glen,lanes,ff,sig", func(w *bufio.Writer) {
			for i, l := range net.Links() {
				sig := 0
				if n, ok := net.Node(l.To); ok && n.Signalised {
					sig = 1
				}
				ff, _ := net.FreeFlowKmh(l.ID)
				fmt.Fprintf(w, "%d,%s,%.1f,%.1f,%d,%.1f,%d\n", i, l.ID, l.LengthM, l.GeomLengthM(), l.Lanes, ff, sig)
			}
		})
	}, func(name string, cf *cityFiles, seed int64, run *simRun) {
		writeCSV(t, filepath.Join(out, fmt.Sprintf("%s-s%d-truth.csv", name, seed)), "w,unit,sumkmh,vehs", func(w *bufio.Writer) {
			for _, o := range run.Speed {
				if o.Unit[0] == 'L' || o.Unit[0] == 'P' || o.Unit[0] == 'Q' {
					fmt.Fprintf(w, "%d,%s,%.2f,%.0f\n", o.Window, o.Unit, o.SumKmh, o.VehS)
				}
			}
		})
		for _, low := range []bool{false, true} {
			pct := "15"
			if low {
				pct = "5"
			}
			dumpRun(ctx, t, filepath.Join(out, fmt.Sprintf("%s-s%d-%s", name, seed, pct)), cf.net, run, low)
		}
	})
}

func writeCSV(t *testing.T, path, head string, rows func(*bufio.Writer)) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, head)
	rows(w)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// dumpRun feeds one variant of a run through a fresh engine (as feedRun does) and writes its fixes and estimates.
func dumpRun(ctx context.Context, t *testing.T, prefix string, net *geo.Network, run *simRun, low bool) {
	events := run.trafficEvents(low)
	sort.SliceStable(events, func(i, j int) bool { return events[i].TS < events[j].TS })
	var fixes, ests strings.Builder
	ecfg := engineConfig(net, nil)
	// Called on the goroutine that applies (the feeder's, through the ingestor): no lock needed.
	ecfg.ObserveRows = func(rec arrow.Record, links []int32, offs []float32) {
		ts := rec.Column(schema.ColTS).(*array.Timestamp)
		kind := rec.Column(schema.ColKind).(*array.Uint8)
		ids := rec.Column(schema.ColID).(*array.String)
		sp := rec.Column(schema.ColSpeed).(*array.Float32)
		fl := rec.Column(schema.ColFlow).(*array.Float32)
		oc := rec.Column(schema.ColOccupancy).(*array.Float32)
		iv := rec.Column(schema.ColInterval).(*array.Float32)
		for i := 0; i < int(rec.NumRows()); i++ {
			if links[i] < 0 {
				continue
			}
			f := func(a *array.Float32) float64 {
				if a.IsNull(i) {
					return math.NaN()
				}
				return float64(a.Value(i))
			}
			fmt.Fprintf(&fixes, "%d,%d,%s,%d,%.4f,%.2f,%.1f,%.3f,%.0f\n", int64(ts.Value(i)), kind.Value(i), ids.Value(i), links[i], offs[i], f(sp), f(fl), f(oc), f(iv))
		}
	}
	d := &direct{e: engine.New(ecfg), bb: geo.BBox{MinLng: -180, MinLat: -90, MaxLng: 180, MaxLat: 90}}
	d.in = ingest.New(ingest.DefaultConfig(), d)
	defer d.stop()
	f := newFeeder(d, simStart)
	start := simStart.UnixMilli()
	f.atWindow = func(ctx context.Context, at int64) error {
		w := (at-start)/1000/SpeedWindowS - 1
		for _, ls := range d.e.Links(d.bb) {
			est := ls.Estimate(1)
			s, _ := ls.W[1].Speed()
			cs, _ := ls.Cell[1].Speed()
			w1, w2 := &ls.W[1], &ls.W[2]
			fmt.Fprintf(&ests, "%d,%s,%.3f,%.3f,%.3f,%.3f,%d,%d,%d,%d,%d,%.1f,%.3f,%.2f,%.2f,%d,%.3f,%d\n", w, ls.Link.ID, est.Kmh, est.Evidence, est.Own, s,
				w1.Kinds[schema.KindProbe], w1.Kinds[schema.KindTransit], w1.Kinds[schema.KindDetector], w1.Samples, w1.FlowN, w1.FlowSum, w1.OccSum,
				w2.SpeedW-w1.SpeedW, w2.SpeedSum-w1.SpeedSum, w2.Kinds[schema.KindProbe]-w1.Kinds[schema.KindProbe], cs, ls.Cell[1].Kinds[schema.KindProbe])
		}
		return nil
	}
	for i := range events {
		if err := f.add(ctx, &events[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if f.nextWin <= simTime(run.EndS).UnixMilli() {
		if err := f.atWindow(ctx, f.nextWin); err != nil {
			t.Fatal(err)
		}
	}
	writeCSV(t, prefix+"-fixes.csv", "ts,kind,id,link,off,speed,flow,occ,intv", func(w *bufio.Writer) { w.WriteString(fixes.String()) })
	writeCSV(t, prefix+"-est.csv", "w,link,est,evid,own,sample,probe,transit,det,samples,flown,flowsum,occsum,h_sw,h_ss,h_probe,cell_sample,cell_probe",
		func(w *bufio.Writer) { w.WriteString(ests.String()) })
}
