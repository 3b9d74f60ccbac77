package eval

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"citybrain/engine/detect"
)

// TestRowDump (ROWDUMP=file.csv; ROWDUMP_CACHE=the eval cache; ROWDUMP_SEEDS=1,2,3 or 3 for seeds 1-3; ROWDUMP_CITIES): the detector's
// rows of every corpus run at 15 % and 5 % probes, as CSV: the rows past the gate and every row of a blocked link
// (label 1), with the seconds since its blockage began and the gate, young, full-flow and discharging flags
// (detect.Features), then the features by name.
// Each run's rows are extracted as the eval extracts them (runSet.rows): after the warm-up day (warm.go), or
// cold with ROWDUMP_COLD=1 (the eval's --warm=false).
// What docs/incidents.md "Issue 12, eleventh pass: detector" reads the blocked links' first minutes from.
func TestRowDump(t *testing.T) {
	out := os.Getenv("ROWDUMP")
	if out == "" {
		t.Skip("ROWDUMP not set")
	}
	if os.Getenv("ROWDUMP_SEEDS") == "3" { // the documented short form of seeds 1-3
		t.Setenv("ROWDUMP_SEEDS", "1,2,3")
	}
	cfg := harnessConfig(t, "ROWDUMP", 1, 2)
	cfg.Cold = os.Getenv("ROWDUMP_COLD") == "1"
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	defer w.Flush()
	fmt.Fprintf(w, "city,seed,low,link,t,label,truth,class,since,gate,young,fullflow,discharging,%s\n", strings.Join(detect.FeatureNames[:], ","))
	eachCity(t, cfg, func(name string, cf *cityFiles, rs *runSet) {
		err := rs.rows(cfg.Seeds, cf.net, func(seed int64, run *simRun, low bool, rows []Row) {
			start := map[string]int64{}
			for _, tr := range run.Truths {
				start[tr.ID] = tr.Start.UnixMilli()
			}
			for _, r := range rows {
				since := int64(-1)
				if r.Truth != "" {
					since = (r.T - start[r.Truth]) / 1000
				}
				g := 0
				if detect.Gate(&r.X) {
					g = 1
				}
				if g == 0 && r.Label != 1 {
					continue
				}
				y := 0
				if r.Young {
					y = 1
				}
				lo := 0
				if low {
					lo = 1
				}
				fmt.Fprintf(w, "%s,%d,%d,%d,%d,%d,%s,%s,%d,%d,%d,%d,%d", name, seed, lo, r.Link, r.T, r.Label, r.Truth, r.Class, since, g, y,
					boolByte(r.FullFlow), boolByte(r.Discharging))
				for _, v := range r.X {
					fmt.Fprintf(w, ",%.4g", v)
				}
				fmt.Fprintln(w)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
