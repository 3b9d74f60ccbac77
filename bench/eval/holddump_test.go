package eval

import (
	"fmt"
	"os"
	"testing"

	"citybrain/engine/detect"
	"citybrain/geo"
)

// TestHoldDump writes the hold reading (detect.HoldReading) over the cached corpus runs (issue 12, session
// 20): every row (a link at a bucket end, warm engines) with a queue head to HOLDDUMP.rows.csv, every
// blockage to HOLDDUMP.truths.csv. HOLDDUMP_CACHE, HOLDDUMP_CITIES and HOLDDUMP_SEEDS as TestRowDump's;
// "demo" among the cities adds the demo city (seeds 1 and 2, cold, as eval --no-sumo). A diagnosis harness,
// not a check: it skips unless HOLDDUMP is set.
func TestHoldDump(t *testing.T) {
	out := os.Getenv("HOLDDUMP")
	if out == "" {
		t.Skip("HOLDDUMP not set")
	}
	cfg := harnessConfig(t, "HOLDDUMP", 1, 2, 3)
	w, tw := csvOut(t, out+".rows.csv"), csvOut(t, out+".truths.csv")
	fmt.Fprintln(w, "city,seed,low,link,t,label,truth,class,since,onlink,lanes,len,sig,young,fullflow,disch,head,heads,near,near60,exits,exitlam,passed,ownn,ownge,ref,standratio,passing,exitdef,lat,lng,downflow,maindown,downquiet,standbefore,speedbefore,slowrare,entrydef,fixratio")
	fmt.Fprintln(tw, "city,seed,truth,class,pos,lanes,start,end,full,link")
	write := func(name string, links []*geo.Link, seed int64, run *simRun, low bool, rows []Row) {
		sinceOf := sinceTruth(run, links)
		for _, tr := range run.Truths {
			if !low {
				full := int64(0)
				if tr.Full != nil {
					full = tr.Full.UnixMilli()
				}
				fmt.Fprintf(tw, "%s,%d,%s,%s,%s,%d,%d,%d,%d,%s\n", name, seed, tr.ID, tr.Class, tr.Position, tr.Lanes,
					tr.Start.UnixMilli(), tr.End.UnixMilli(), full, tr.Link)
			}
		}
		for _, r := range rows {
			h := r.Hold
			if h.HeadM < 0 {
				continue
			}
			p, _ := links[r.Link].PointAt(h.HeadM)
			since, on := sinceOf(&r)
			fmt.Fprintf(w, "%s,%d,%v,%d,%d,%d,%s,%s,%d,%d,%d,%.0f,%v,%v,%v,%v,%.0f,%.0f,%d,%d,%d,%.2f,%d,%d,%d,%.0f,%.2f,%.2f,%.2f,%.6f,%.6f,%.2f,%.2f,%.0f,%.2f,%.2f,%.2f,%.2f,%.2f\n", name, seed, low, r.Link, r.T,
				r.Label, r.Truth, r.Class, since, on, links[r.Link].Lanes, links[r.Link].GeomLengthM(), r.X[detect.FSignal], r.Young,
				r.FullFlow, r.Discharging, h.HeadM, h.HeadS, h.Near, h.Near60, h.Exits, h.ExitLam, h.Passed, h.OwnN, h.OwnGE, h.Ref,
				r.X[detect.FStandRatio], r.X[detect.FPassing], r.X[detect.FExitDeficit], p.Lat, p.Lng,
				r.X[detect.FDownFlow], r.X[detect.FMainDown], r.X[detect.FDownQuiet], r.X[detect.FStandBefore], r.X[detect.FSpeedBefore],
				r.X[detect.FSlowRare], r.X[detect.FEntryDeficit], r.X[detect.FFixRatio])
		}
	}
	eachRowSet(t, cfg, write)
}
