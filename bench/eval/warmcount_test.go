package eval

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
)

// TestWarmCount (WARMCOUNT=1; WARMCOUNT_CACHE=the eval cache; WARMCOUNT_SEEDS, WARMCOUNT_CITIES): per city,
// the blockages whose link is young through its first 180 s (every row of the link in [start, start+180 s]
// young, or no row at all) with the engine cold and warmed by the day before (warm.go). What
// docs/incidents.md "Issue 12, the warm-up" counts.
func TestWarmCount(t *testing.T) {
	if os.Getenv("WARMCOUNT") == "" {
		t.Skip("WARMCOUNT not set")
	}
	cfg := harnessConfig(t, "WARMCOUNT", 1, 2, 3)
	type key struct {
		city, class string
		low, warm   bool
	}
	type tally struct{ n, young, none int }
	counts := map[key]*tally{}
	for _, name := range cfg.Cities {
		c, _ := cityByName(name)
		cf, err := buildCity(t.Context(), cfg, c)
		if err != nil {
			t.Fatal(err)
		}
		rs := newRunSet(t.Context(), cfg, c, cf, float64(cfg.Minutes)*60)
		for _, seed := range cfg.Seeds {
			run, err := rs.run(seed)
			if err != nil {
				t.Fatal(err)
			}
			wr, err := rs.run(warmSeed(seed))
			if err != nil {
				t.Fatal(err)
			}
			for _, low := range []bool{false, true} {
				for _, warm := range []bool{false, true} {
					var w *simRun
					if warm {
						w = wr
					}
					rows, err := extractRowsWarm(context.Background(), run, w, cf.net, low)
					if err != nil {
						t.Fatal(err)
					}
					learned, any := map[string]bool{}, map[string]bool{}
					for i := range rows {
						r := &rows[i]
						if r.Label != 1 {
							continue
						}
						for j := range run.Truths {
							tr := &run.Truths[j]
							if tr.ID != r.Truth {
								continue
							}
							if r.T <= tr.Start.UnixMilli()+180_000 {
								any[tr.ID] = true
								if !r.Young {
									learned[tr.ID] = true
								}
							}
						}
					}
					for _, tr := range run.Truths {
						k := key{name, tr.Class, low, warm}
						if counts[k] == nil {
							counts[k] = &tally{}
						}
						counts[k].n++
						switch {
						case !any[tr.ID]:
							counts[k].none++
						case !learned[tr.ID]:
							counts[k].young++
						}
					}
				}
			}
		}
	}
	var keys []key
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.class != b.class {
			return a.class < b.class
		}
		if a.low != b.low {
			return !a.low
		}
		if a.city != b.city {
			return a.city < b.city
		}
		return !a.warm && b.warm
	})
	for _, k := range keys {
		c := counts[k]
		fmt.Printf("WARMCOUNT %-8s low=%-5v %-9s warm=%-5v blockages %2d young-through-180s %2d no-row %2d\n", k.class, k.low, k.city, k.warm, c.n, c.young, c.none)
	}
}
