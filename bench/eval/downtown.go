package eval

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// The downtown (session 17): a city outside the corpus that runs near capacity, for the check the town and the
// suburb cannot make. Both give way at most junctions and run light (30–31 km/h mean at their periods: their
// priority junctions run out of gaps long before their streets fill), so no model shows a false alarm there and
// they cannot tell a loose operating point from a safe one (docs/incidents.md, "a second city outside the
// corpus"). The downtown is what issue 12 describes instead: every junction a signal, blocks short enough that
// the queue of a red light reaches back towards the junction before it, demand near capacity. Its layout is
// unlike every corpus city: a grid of one-way streets (the corpus's grid is two-way, 2 lanes everywhere, 200-m
// square blocks), as in many city centres: avenues of 2 lanes and cross streets of 1, alternating in direction,
// with one two-way boulevard and one two-way crosstown street of 2 + 2 lanes, on uneven blocks, and 150-m
// two-way stubs out of its edge (the roads into the centre, where trips begin and end).

// The downtown's plan: downtownAvenues north–south avenues downtownAvenueGap apart (drawn per gap), crossed by
// downtownStreets east–west streets downtownStreetGap apart; the boulevard and the crosstown street are the
// two-way ones.
const (
	downtownAvenues    = 8
	downtownStreets    = 8
	downtownBoulevard  = 4 // the two-way avenue
	downtownCrosstown  = 3 // the two-way street
	downtownStubM      = 150
	downtownSpeedMS    = 13.89
	downtownAvenueLane = 2 // lanes of a one-way avenue, and of each way of the boulevard and the crosstown
	downtownStreetLane = 1 // lanes of a one-way street and of a stub's each way (2 on the two-way roads)
)

var (
	downtownAvenueGap = [2]float64{130, 190} // m between neighbouring avenues (the cross streets' blocks)
	downtownStreetGap = [2]float64{95, 145}  // m between neighbouring streets (the avenues' blocks)
)

// downtownPeriod is the downtown's randomTrips period, by the corpus's rule (city.Period), seeds 1–3 without
// blockages (docs/incidents.md, "a dense city outside the corpus").
const downtownPeriod = 0.55

// buildDowntown writes the downtown's nodes and edges (plain XML) and builds its net with netconvert, every
// junction of the grid a static signal program, then places it at its origin.
func buildDowntown(ctx context.Context, b *builder) error {
	nodes, edges := downtownPlan()
	if err := os.WriteFile(filepath.Join(b.dir, "downtown.nod.xml"), []byte(nodes), 0o644); err != nil {
		return fmt.Errorf("cannot write the downtown's nodes: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "downtown.edg.xml"), []byte(edges), 0o644); err != nil {
		return fmt.Errorf("cannot write the downtown's edges: %w", err)
	}
	b.net = "downtown.net.xml"
	if err := tool(ctx, b.dir, "netconvert", "--node-files", "downtown.nod.xml", "--edge-files", "downtown.edg.xml",
		"--no-turnarounds", "true", "--no-warnings", "-o", b.net); err != nil {
		return err
	}
	o := netgenOrigin["downtown"]
	return placeNet(filepath.Join(b.dir, b.net), o[0], o[1])
}

// downtownPlan returns the downtown's node and edge files. Node c{i}r{j} is avenue i's crossing with street j;
// c{i}s and c{i}n are the ends of avenue i's stubs (south, north), r{j}w and r{j}e street j's. An edge is named
// by its two nodes. The gaps are drawn from a fixed seed, so the plan is the same on every build.
func downtownPlan() (nodes, edges string) {
	rng := rand.New(rand.NewPCG(nameSeed("downtown"), 1))
	draw := func(n int, gap [2]float64) []float64 {
		at := make([]float64, n)
		for i := 1; i < n; i++ {
			at[i] = at[i-1] + gap[0] + rng.Float64()*(gap[1]-gap[0])
		}
		return at
	}
	xs := draw(downtownAvenues, downtownAvenueGap)
	ys := draw(downtownStreets, downtownStreetGap)
	var nb, eb strings.Builder
	nb.WriteString("<nodes>\n")
	eb.WriteString("<edges>\n")
	node := func(id string, x, y float64, tl bool) {
		typ := ""
		if tl {
			typ = ` type="traffic_light"`
		}
		fmt.Fprintf(&nb, "    <node id=\"%s\" x=\"%.1f\" y=\"%.1f\"%s/>\n", id, x, y, typ)
	}
	edge := func(from, to string, lanes int) {
		fmt.Fprintf(&eb, "    <edge id=\"%s%s\" from=\"%s\" to=\"%s\" numLanes=\"%d\" speed=\"%.2f\"/>\n", from, to, from, to, lanes, downtownSpeedMS)
	}
	// way links a and b (a before b in the avenue's or street's order) as the road's direction asks: forward
	// (a to b), backward, or both ways.
	way := func(a, b string, lanes int, forward, backward bool) {
		if forward {
			edge(a, b, lanes)
		}
		if backward {
			edge(b, a, lanes)
		}
	}
	cr := func(i, j int) string { return fmt.Sprintf("c%dr%d", i, j) }
	for i, x := range xs {
		for j, y := range ys {
			node(cr(i, j), x, y, true)
		}
		node(fmt.Sprintf("c%ds", i), x, ys[0]-downtownStubM, false)
		node(fmt.Sprintf("c%dn", i), x, ys[len(ys)-1]+downtownStubM, false)
	}
	for j, y := range ys {
		node(fmt.Sprintf("r%dw", j), xs[0]-downtownStubM, y, false)
		node(fmt.Sprintf("r%de", j), xs[len(xs)-1]+downtownStubM, y, false)
	}
	for i := range xs {
		// Avenue i runs north (forward) when i is even, south when odd; the boulevard both ways.
		lanes, fw, bw := downtownAvenueLane, i%2 == 0, i%2 == 1
		stub := downtownStreetLane
		if i == downtownBoulevard {
			fw, bw, stub = true, true, downtownAvenueLane
		}
		for j := 0; j+1 < len(ys); j++ {
			way(cr(i, j), cr(i, j+1), lanes, fw, bw)
		}
		way(fmt.Sprintf("c%ds", i), cr(i, 0), stub, true, true)
		way(cr(i, len(ys)-1), fmt.Sprintf("c%dn", i), stub, true, true)
	}
	for j := range ys {
		// Street j runs east (forward) when j is even, west when odd; the crosstown street both ways.
		lanes, fw, bw := downtownStreetLane, j%2 == 0, j%2 == 1
		stub := downtownStreetLane
		if j == downtownCrosstown {
			lanes, fw, bw, stub = downtownAvenueLane, true, true, downtownAvenueLane
		}
		for i := 0; i+1 < len(xs); i++ {
			way(cr(i, j), cr(i+1, j), lanes, fw, bw)
		}
		way(fmt.Sprintf("r%dw", j), cr(0, j), stub, true, true)
		way(cr(len(xs)-1, j), fmt.Sprintf("r%de", j), stub, true, true)
	}
	nb.WriteString("</nodes>\n")
	eb.WriteString("</edges>\n")
	return nb.String(), eb.String()
}
