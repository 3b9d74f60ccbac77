package eval

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"citybrain/geo"
)

// Corpus health: does a SUMO run of the corpus hold issue 12's traffic condition, "near capacity, so standing
// queues at red lights and spillback are normal", or does it drift into gridlock over the hour? Measured from
// what a cached run already holds: the speed truth (every vehicle's every second, per 150 m square and per
// link, per 300-s window), the blockages' truths, and SUMO's closing statistics.

// awayM: a square whose centre is farther than this from every blockage that has started shows the background
// demand rather than the closures' own queues (an approximation: spillback can reach farther).
const awayM = 500

// slowKmh: a link-window slower than this (vehicle-seconds mean) is a standing queue.
const slowKmh = 5

// HealthWindow is one 300-s window of a run.
type HealthWindow struct {
	Window int `json:"window"` // [Window·300 s, (Window+1)·300 s)
	// Vehicles: mean vehicles in the network (vehicle-seconds / 300, blockers not counted).
	Vehicles float64 `json:"vehicles"`
	// Kmh: the vehicle-seconds mean speed over the network.
	Kmh float64 `json:"kmh"`
	// SlowLinks: the share of links with traffic in the window whose mean speed is under slowKmh.
	SlowLinks float64 `json:"slow_links"`
	Links     int     `json:"links"`
	// Blocked: blockages in force during part of the window; Started: blockages started by its end.
	Blocked int `json:"blocked"`
	Started int `json:"started"`
	// AwayKmh, AwayShare: the mean speed of the squares farther than awayM from every started blockage, and
	// their share of the window's vehicle-seconds (0 and 0 when there are none).
	AwayKmh   float64 `json:"away_kmh"`
	AwayShare float64 `json:"away_share"`
}

// HealthRun is the health of one city's run of one seed.
type HealthRun struct {
	City    string         `json:"city"`
	Seed    int64          `json:"seed"`
	Windows []HealthWindow `json:"windows"`
	// FirstBlockS: when the first blockage started (s; -1: none).
	FirstBlockS float64 `json:"first_block_s"`
	// From SUMO's closing statistics (-1: no statistics): vehicles still running at the end, still waiting to
	// enter (the insertion backlog), loaded, inserted, teleported.
	Running   int `json:"running"`
	Waiting   int `json:"waiting"`
	Loaded    int `json:"loaded"`
	Inserted  int `json:"inserted"`
	Teleports int `json:"teleports"`
}

var sumoStatRE = regexp.MustCompile(`(Inserted|Loaded|Running|Waiting|Teleports): (\d+)`)

// corpusHealth measures run by 300-s windows.
func corpusHealth(run *simRun) HealthRun {
	h := HealthRun{City: run.City, Seed: run.Seed, FirstBlockS: -1, Running: -1, Waiting: -1, Loaded: -1, Inserted: -1, Teleports: -1}
	for _, n := range run.Notes {
		if !strings.HasPrefix(n, "sumo: ") {
			continue
		}
		h.Teleports = 0 // SUMO prints the line only when there were teleports
		for _, m := range sumoStatRE.FindAllStringSubmatch(n, -1) {
			v, _ := strconv.Atoi(m[2])
			switch m[1] {
			case "Inserted":
				h.Inserted = v
			case "Loaded":
				h.Loaded = v
			case "Running":
				h.Running = v
			case "Waiting":
				h.Waiting = v
			case "Teleports":
				h.Teleports = v
			}
		}
	}
	if h.Loaded < 0 && h.Inserted >= 0 {
		h.Loaded = h.Inserted + max(h.Waiting, 0) // SUMO prints "(Loaded: n)" only when it differs from Inserted
	}
	type span struct {
		s, e float64
		at   geo.LatLng
	}
	var blocks []span
	for _, t := range run.Truths {
		b := span{t.Start.Sub(simStart).Seconds(), t.End.Sub(simStart).Seconds(), geo.LatLng{Lat: t.Lat, Lng: t.Lng}}
		blocks = append(blocks, b)
		if h.FirstBlockS < 0 || b.s < h.FirstBlockS {
			h.FirstBlockS = b.s
		}
	}
	type acc struct {
		sum, vehS, awaySum, awayVehS float64
		links, slow                  int
	}
	ws := map[int32]*acc{}
	get := func(w int32) *acc {
		a := ws[w]
		if a == nil {
			a = &acc{}
			ws[w] = a
		}
		return a
	}
	for _, o := range run.Speed {
		switch {
		case strings.HasPrefix(o.Unit, "L:"):
			if o.VehS > 0 {
				a := get(o.Window)
				a.links++
				if o.SumKmh/o.VehS < slowKmh {
					a.slow++
				}
			}
		case strings.HasPrefix(o.Unit, "S:"):
			a := get(o.Window)
			a.sum += o.SumKmh
			a.vehS += o.VehS
			x, y, ok := strings.Cut(o.Unit[2:], ",")
			xi, err1 := strconv.Atoi(x)
			yi, err2 := strconv.Atoi(y)
			if !ok || err1 != nil || err2 != nil {
				continue
			}
			c := squareCentre(run.Origin, xi, yi)
			end := float64(o.Window+1) * SpeedWindowS
			away := true
			for _, b := range blocks {
				if b.s < end && geo.DistanceM(c, b.at) <= awayM {
					away = false
					break
				}
			}
			if away {
				a.awaySum += o.SumKmh
				a.awayVehS += o.VehS
			}
		}
	}
	keys := make([]int32, 0, len(ws))
	for w := range ws {
		keys = append(keys, w)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, w := range keys {
		a := ws[w]
		s, e := float64(w)*SpeedWindowS, float64(w+1)*SpeedWindowS
		hw := HealthWindow{Window: int(w), Vehicles: round3(a.vehS / SpeedWindowS), Links: a.links}
		if a.vehS > 0 {
			hw.Kmh = round3(a.sum / a.vehS)
			hw.AwayShare = round3(a.awayVehS / a.vehS)
		}
		if a.links > 0 {
			hw.SlowLinks = round3(float64(a.slow) / float64(a.links))
		}
		if a.awayVehS > 0 {
			hw.AwayKmh = round3(a.awaySum / a.awayVehS)
		}
		for _, b := range blocks {
			if b.s < e {
				hw.Started++
				if b.e > s {
					hw.Blocked++
				}
			}
		}
		h.Windows = append(h.Windows, hw)
	}
	return h
}

// healthTable prints, per run, the network in its second, middle and last 300-s windows (5–10, 25–30 and
// 55–60 min of an hour): vehicles, mean speed, share of standing links, the speed away from the blockages; the
// last window against the middle one; and SUMO's closing backlog.
func healthTable(hs []HealthRun) string {
	if len(hs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Corpus health: the network in its 2nd, middle and last 5-min windows (5–10 / 25–30 / 55–60 min of an hour); issue 12 asks for traffic near capacity, not gridlock (every vehicle's every second; blockers not counted)\n\n")
	b.WriteString("| run | windows from | first blockage | vehicles | mean km/h | links < 5 km/h | km/h > 500 m from started blockages (share of veh-s) | last ÷ middle: vehicles, km/h | at the end: running, waiting to enter of loaded, teleports |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, h := range hs {
		n := len(h.Windows)
		if n < 3 {
			continue
		}
		first := "–"
		if h.FirstBlockS >= 0 {
			first = fmt.Sprintf("%.1f min", h.FirstBlockS/60)
		}
		var veh, kmh, slow, away []string
		mid, last := h.Windows[(n-1)/2], h.Windows[n-1]
		for _, w := range []HealthWindow{h.Windows[1], mid, last} {
			veh = append(veh, fmt.Sprintf("%.0f", w.Vehicles))
			kmh = append(kmh, fmt.Sprintf("%.1f", w.Kmh))
			slow = append(slow, fmt.Sprintf("%.0f %%", 100*w.SlowLinks))
			if w.AwayShare > 0 {
				away = append(away, fmt.Sprintf("%.1f (%.0f %%)", w.AwayKmh, 100*w.AwayShare))
			} else {
				away = append(away, "–")
			}
		}
		ratio := "–"
		if mid.Vehicles > 0 && mid.Kmh > 0 {
			ratio = fmt.Sprintf("×%.2f, ×%.2f", last.Vehicles/mid.Vehicles, last.Kmh/mid.Kmh)
		}
		fmt.Fprintf(&b, "| %s/seed%d | %d, %d, %d min | %s | %s | %s | %s | %s | %s | %d, %d of %d, %d |\n", h.City, h.Seed,
			h.Windows[1].Window*SpeedWindowS/60, mid.Window*SpeedWindowS/60, last.Window*SpeedWindowS/60, first,
			strings.Join(veh, " / "), strings.Join(kmh, " / "), strings.Join(slow, " / "), strings.Join(away, " / "), ratio,
			h.Running, h.Waiting, h.Loaded, h.Teleports)
	}
	b.WriteString("\n")
	return b.String()
}
