package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	w := csvOut(t, out)
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

// TestRowProbs (ROWPROBS=file.csv; ROWPROBS_MODELS=name=model.json,… ; ROWPROBS_CACHE=the eval cache;
// ROWPROBS_CITIES, default every corpus city, outside ones by name; ROWPROBS_SEEDS, default 1,2,3): every run's rows
// past the gate and every row labelled (a blockage's or near one), at 15 % and 5 % probes, warm as the eval
// extracts them, each scored by every model named (its probability; −1 where the gate does not pass), then the
// features by name. Beside file.csv: CITY-topo.json (each link's ID, the links arriving at its start and leaving
// its end, its length) and CITY-SEED-truths.json (the run's blockages, with when each became full). The tool that
// compares two models' judgements of the same rows, e.g. the shipped model and a refit on the cities outside the
// corpus (docs/incidents.md, issue 12, twentieth pass: the feeders' positives).
func TestRowProbs(t *testing.T) {
	out := os.Getenv("ROWPROBS")
	if out == "" {
		t.Skip("ROWPROBS not set")
	}
	type named struct {
		name string
		m    *detect.Model
	}
	var models []named
	for _, kv := range strings.Split(os.Getenv("ROWPROBS_MODELS"), ",") {
		name, path, ok := strings.Cut(kv, "=")
		if !ok || name == "" || path == "" {
			t.Fatalf("ROWPROBS_MODELS: %q is not name=model.json", kv)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := detect.ParseModel(data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		models = append(models, named{name, m})
	}
	cfg := harnessConfig(t, "ROWPROBS", 1, 2, 3)
	w := csvOut(t, out)
	dir := filepath.Dir(out)
	fmt.Fprint(w, "city,seed,low,link,t,label,truth,class,gate,young")
	for _, m := range models {
		fmt.Fprint(w, ",p_"+m.name)
	}
	fmt.Fprintf(w, ",%s\n", strings.Join(detect.FeatureNames[:], ","))
	eachCity(t, cfg, func(name string, cf *cityFiles, rs *runSet) {
		type link struct {
			ID       string
			Up, Down []int32
			LengthM  float64
		}
		var links []link
		for i, l := range detect.LinksOf(cf.net) {
			links = append(links, link{cf.net.Links()[i].ID, l.Up, l.Down, l.LengthM})
		}
		writeJSON(t, filepath.Join(dir, name+"-topo.json"), links)
		err := rs.rows(cfg.Seeds, cf.net, func(seed int64, run *simRun, low bool, rows []Row) {
			if !low {
				writeJSON(t, filepath.Join(dir, fmt.Sprintf("%s-%d-truths.json", name, seed)), run.Truths)
			}
			for _, r := range rows {
				g := detect.Gate(&r.X)
				if !g && r.Label == 0 {
					continue
				}
				fmt.Fprintf(w, "%s,%d,%d,%d,%d,%d,%s,%s,%d,%d", name, seed, boolByte(low), r.Link, r.T, r.Label, r.Truth, r.Class, boolByte(g), boolByte(r.Young))
				for _, m := range models {
					p := -1.0
					if g {
						p = m.m.Prob(&r.X)
					}
					fmt.Fprintf(w, ",%.4f", p)
				}
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

// writeJSON writes v to path as JSON or fails the test.
func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// csvOut creates the file path for a dump test's rows, flushed and closed when the test ends.
func csvOut(t *testing.T, path string) *bufio.Writer {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	t.Cleanup(func() {
		if err := w.Flush(); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		f.Close()
	})
	return w
}
