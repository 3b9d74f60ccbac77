package eval

import (
	"fmt"
	"os"
	"testing"

	"citybrain/engine/detect"
	"citybrain/geo"
)

// TestSqueezeDump writes the squeeze judge's readings (detect.SqueezeReading) over the cached corpus runs, to
// choose and check its constants per city (issue 12, session 18; docs/incidents.md, nineteenth pass): every
// row (a link at a bucket end, warm engines) with a squeezed vehicle in its window to SQUEEZEDUMP.rows.csv,
// every blockage to SQUEEZEDUMP.truths.csv. SQUEEZEDUMP_CACHE, SQUEEZEDUMP_CITIES and SQUEEZEDUMP_SEEDS as
// TestRowDump's; "demo" among the cities adds the demo city (seeds 1 and 2, cold, as eval --no-sumo). A
// diagnosis harness, not a check: it skips unless SQUEEZEDUMP is set.
func TestSqueezeDump(t *testing.T) {
	out := os.Getenv("SQUEEZEDUMP")
	if out == "" {
		t.Skip("SQUEEZEDUMP not set")
	}
	cfg := harnessConfig(t, "SQUEEZEDUMP", 1, 2, 3)
	w, tw := csvOut(t, out+".rows.csv"), csvOut(t, out+".truths.csv")
	fmt.Fprintln(w, "city,seed,low,link,t,label,truth,class,since,onlink,lanes,n,sur,off,sq,lam,len,sig,young,down,main,fixes,xk,xn,xp,xs,xoff,xspan,able")
	fmt.Fprintln(tw, "city,seed,truth,class,pos,lanes,start,end,link")
	write := func(name string, links []*geo.Link, seed int64, run *simRun, low bool, rows []Row) {
		sinceOf := sinceTruth(run, links)
		for _, tr := range run.Truths {
			if !low {
				fmt.Fprintf(tw, "%s,%d,%s,%s,%s,%d,%d,%d,%s\n", name, seed, tr.ID, tr.Class, tr.Position, tr.Lanes,
					tr.Start.UnixMilli(), tr.End.UnixMilli(), tr.Link)
			}
		}
		for _, r := range rows {
			q := r.Squeeze
			if q.N < 1 {
				continue
			}
			since, on := sinceOf(&r)
			fmt.Fprintf(w, "%s,%d,%v,%d,%d,%d,%s,%s,%d,%d,%d,%d,%.3f,%.0f,%v,%.4f,%.0f,%v,%v,%.2f,%.2f,%.2f,%d,%d,%.5f,%.3f,%.0f,%d,%v\n", name, seed, low, r.Link, r.T,
				r.Label, r.Truth, r.Class, since, on, links[r.Link].Lanes, q.N, q.Surprise, q.OffM, q.Squeezed, q.Lambda,
				links[r.Link].GeomLengthM(), r.X[detect.FSignal], r.Young, r.X[detect.FDownFlow], r.X[detect.FMainDown], r.X[detect.FFixes],
				q.XK, q.XN, q.XP, q.XSurprise, q.XOffM, q.XSpanMs/1000, q.Able)
		}
	}
	eachRowSet(t, cfg, write)
}
