package eval

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"citybrain/geo"
)

// printStandingLinks prints the ten links with the most vehicle-seconds in windows slower than slowKmh, with
// how many of the run's windows they stood in and the first of them (CITYBRAIN_HEALTH_LINKS=1).
func printStandingLinks(run *simRun) {
	type st struct {
		link       string
		vehS       float64
		n, first   int
		allWindows int
	}
	by := map[string]*st{}
	for _, o := range run.Speed {
		if !strings.HasPrefix(o.Unit, "L:") || o.VehS == 0 {
			continue
		}
		s := by[o.Unit[2:]]
		if s == nil {
			s = &st{link: o.Unit[2:], first: -1}
			by[o.Unit[2:]] = s
		}
		s.allWindows++
		if o.SumKmh/o.VehS < slowKmh {
			s.vehS += o.VehS
			s.n++
			if s.first < 0 || int(o.Window) < s.first {
				s.first = int(o.Window)
			}
		}
	}
	var all []*st
	for _, s := range by {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].vehS > all[j].vehS })
	fmt.Printf("  links standing most (vehicle-seconds under %d km/h; windows standing of windows with traffic; first standing window's minute):\n", slowKmh)
	for i := 0; i < len(all) && i < 10; i++ {
		fmt.Printf("    %-24s %8.0f  %2d of %2d  from min %d\n", all[i].link, all[i].vehS, all[i].n, all[i].allWindows, all[i].first*SpeedWindowS/60)
	}
}

// blockageSpill is one blockage's standing queue: in the 300-s windows it covers for at least half
// (during) and the up-to-two windows before it started (before), how many link-windows of its link and of
// the links feeding it (ending where it begins, not its reverse) stood (vehicle-seconds mean under slowKmh),
// of how many with traffic.
type blockageSpill struct {
	Truth                    Truth
	LinkDuring, LinkDuringOf int
	LinkBefore, LinkBeforeOf int
	FeedDuring, FeedDuringOf int
	FeedBefore, FeedBeforeOf int
	Feeders                  []string
}

// spillback: a feeding link standing during a blockage when none stood before it.
func (b blockageSpill) spillback() bool { return b.FeedDuring > 0 && b.FeedBefore == 0 }

func spillbackOf(run *simRun, net *geo.Network) (out []blockageSpill, missing []string) {
	type lw struct {
		link string
		w    int32
	}
	speed := map[lw][2]float64{}
	for _, o := range run.Speed {
		if strings.HasPrefix(o.Unit, "L:") && o.VehS > 0 {
			speed[lw{o.Unit[2:], o.Window}] = [2]float64{o.SumKmh, o.VehS}
		}
	}
	feeders := map[string][]string{}
	for _, l := range net.Links() {
		feeders[l.To] = append(feeders[l.To], l.ID)
	}
	standing := func(links []string, ws []int32) (n, with int) {
		for _, l := range links {
			for _, w := range ws {
				if v, ok := speed[lw{l, w}]; ok {
					with++
					if v[0]/v[1] < slowKmh {
						n++
					}
				}
			}
		}
		return n, with
	}
	for _, t := range run.Truths {
		l, ok := net.Link(t.Link)
		if !ok {
			missing = append(missing, t.ID)
			continue
		}
		s, e := t.Start.Sub(simStart).Seconds(), t.End.Sub(simStart).Seconds()
		var during, before []int32
		for w := int32(0); float64(w)*SpeedWindowS < run.EndS; w++ {
			a, b := float64(w)*SpeedWindowS, float64(w+1)*SpeedWindowS
			if math.Min(b, e)-math.Max(a, s) >= SpeedWindowS/2 {
				during = append(during, w)
			}
			if b <= s && b > s-2*SpeedWindowS {
				before = append(before, w)
			}
		}
		bs := blockageSpill{Truth: t}
		for _, f := range feeders[l.From] {
			if g, ok := net.Link(f); ok && g.From != l.To {
				bs.Feeders = append(bs.Feeders, f)
			}
		}
		sort.Strings(bs.Feeders)
		bs.LinkDuring, bs.LinkDuringOf = standing([]string{l.ID}, during)
		bs.LinkBefore, bs.LinkBeforeOf = standing([]string{l.ID}, before)
		bs.FeedDuring, bs.FeedDuringOf = standing(bs.Feeders, during)
		bs.FeedBefore, bs.FeedBeforeOf = standing(bs.Feeders, before)
		out = append(out, bs)
	}
	return out, missing
}

// printSpillback prints spillbackOf per blockage and its sums per class (CITYBRAIN_HEALTH_SPILL=1).
func printSpillback(run *simRun, net *geo.Network) {
	type tally struct{ n, linkDuring, linkBefore, feedDuring, feedBefore, spill int }
	by := map[string]*tally{}
	fmt.Println("  blockages: class position link | blocked link standing windows during / before | feeding links standing link-windows during / before (of with traffic)")
	spills, missing := spillbackOf(run, net)
	for _, id := range missing {
		fmt.Printf("    %s: its link is not in the net\n", id)
	}
	for _, b := range spills {
		t := b.Truth
		fmt.Printf("    %-6s %-15s %-13s %-14s | %d of %d / %d of %d | %d of %d / %d of %d\n", t.ID, t.Class, t.Position, t.Link,
			b.LinkDuring, b.LinkDuringOf, b.LinkBefore, b.LinkBeforeOf, b.FeedDuring, b.FeedDuringOf, b.FeedBefore, b.FeedBeforeOf)
		k := by[t.Class]
		if k == nil {
			k = &tally{}
			by[t.Class] = k
		}
		k.n++
		k.linkDuring += min(b.LinkDuring, 1)
		k.linkBefore += min(b.LinkBefore, 1)
		k.feedDuring += min(b.FeedDuring, 1)
		k.feedBefore += min(b.FeedBefore, 1)
		if b.spillback() {
			k.spill++
		}
	}
	for _, c := range []string{"full_closure", "partial_closure"} {
		if k := by[c]; k != nil {
			fmt.Printf("  %s: %d; link standing during %d (before %d); a feeding link standing during %d (before %d); spillback (a feeder standing during, none before) %d\n", c, k.n, k.linkDuring, k.linkBefore, k.feedDuring, k.feedBefore, k.spill)
		}
	}
}

// TestHealthDump is not a test but the harness of docs/incidents.md "The corpus against the issue's conditions
// (session 9)": with CITYBRAIN_HEALTH=1 it reads every run of the corpus (CITYBRAIN_HEALTH_CITIES, default all;
// seeds CITYBRAIN_HEALTH_SEEDS, default 1,2; the cache CITYBRAIN_HEALTH_CACHE, default the eval's; a run not
// cached is simulated) and prints each run's health per 300-s window, then the report's health table.
// CITYBRAIN_HEALTH_LINKS=1 also lists each run's links that stood most. CITYBRAIN_HEALTH_NOBLOCK=1 runs SUMO again without the blockages (not cached: the background demand alone);
// CITYBRAIN_HEALTH_PERIOD=S replaces the randomTrips period of generated demand (use it with a private cache
// whose cities hold no demand files: the demand's file name does not carry its period). CITYBRAIN_HEALTH_SPILL=1
// prints each blockage's standing link and feeding links (printSpillback; docs/incidents.md "The corpus,
// version c3 (session 10)").
func TestHealthDump(t *testing.T) {
	if os.Getenv("CITYBRAIN_HEALTH") == "" {
		t.Skip("the corpus health harness: set CITYBRAIN_HEALTH=1 to run it")
	}
	ctx := context.Background()
	cfg := harnessConfig(t, "CITYBRAIN_HEALTH", 1, 2)
	if why := sumoMissing(cfg); why != "" {
		t.Fatal(why)
	}
	var hs []HealthRun
	for _, name := range cfg.Cities {
		cc, ok := cityByName(name)
		if !ok {
			t.Fatalf("no city %q in the corpus", name)
		}
		c := *cc
		if p := os.Getenv("CITYBRAIN_HEALTH_PERIOD"); p != "" && c.Period > 0 {
			if _, err := fmt.Sscan(p, &c.Period); err != nil {
				t.Fatal(err)
			}
		}
		cf, err := buildCity(ctx, cfg, &c)
		if err != nil {
			t.Fatal(err)
		}
		for _, seed := range cfg.Seeds {
			endS := float64(cfg.Minutes) * 60
			var run *simRun
			if os.Getenv("CITYBRAIN_HEALTH_NOBLOCK") != "" {
				routes, err := cf.demand(ctx, seed, endS)
				if err != nil {
					t.Fatal(err)
				}
				run, err = runSim(ctx, cfg, &c, cf, routes, seed, endS, nil)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var err error
				run, err = simulate(ctx, cfg, &c, cf, seed, endS)
				if err != nil {
					t.Fatal(err)
				}
			}
			h := corpusHealth(run)
			hs = append(hs, h)
			fmt.Printf("%s/seed%d (first blockage %.0f s; end: running %d, waiting %d, loaded %d, inserted %d, teleports %d)\n", h.City, h.Seed, h.FirstBlockS, h.Running, h.Waiting, h.Loaded, h.Inserted, h.Teleports)
			fmt.Println("  min   veh   km/h  slow%  links  blocked started  away_kmh away%")
			for _, w := range h.Windows {
				fmt.Printf("  %3d %5.0f %6.1f %5.1f %6d %4d %4d %8.1f %5.1f\n", w.Window*SpeedWindowS/60, w.Vehicles, w.Kmh, 100*w.SlowLinks, w.Links, w.Blocked, w.Started, w.AwayKmh, 100*w.AwayShare)
			}
			if os.Getenv("CITYBRAIN_HEALTH_LINKS") != "" {
				printStandingLinks(run)
			}
			if os.Getenv("CITYBRAIN_HEALTH_SPILL") != "" {
				printSpillback(run, cf.net)
			}
		}
	}
	fmt.Print(healthTable(hs))
}
