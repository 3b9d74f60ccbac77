package signals

import (
	"math"

	"citybrain/ingest/sumo/traci"
)

// preemptor is the emergency vehicle's green wave over TraCI: every signal ahead on its route whose ETA
// (distance at the larger of its speed and 8 m/s) is within PreemptS plus the time to discharge the vehicles
// standing ahead of it on its lane (2 s each) is steered to the main green serving the vehicle's link (through
// the gateway's safe transition) and held until the vehicle has passed. Signals the method does not drive
// (fixed time) are taken over for the hold and handed back to their program.
type preemptor struct {
	c           *traci.Client
	sc          *Scenario
	o           Options
	gws         map[string]*gateway // the method's gateways (nil for fixed time)
	own         map[string]*gateway // signals taken over from their program
	held        map[string]bool
	preemptions int
	done        bool
}

func newPreemptor(c *traci.Client, sc *Scenario, gws map[string]*gateway, o Options) *preemptor {
	return &preemptor{c: c, sc: sc, o: o, gws: gws, own: map[string]*gateway{}, held: map[string]bool{}}
}

func (p *preemptor) step(now float64) error {
	if p.done {
		return nil
	}
	b := p.c.NewBatch()
	b.Get(traci.CmdGetVeh, traci.VarNextTLS, "ev")
	b.Get(traci.CmdGetVeh, traci.VarSpeed, "ev")
	res, err := b.Do()
	if err != nil {
		return err
	}
	if res[0].Err != nil { // not departed yet, or arrived
		if len(p.held) > 0 {
			p.done = true
			return p.release(now, nil)
		}
		return nil
	}
	next := res[0].NextTLS()
	speed := res[1].Float()
	// Vehicles standing ahead of the EV on each lane it will use are read from the lanes of the links it
	// approaches.
	want := map[string]int{}
	dist := map[string]float64{}
	for _, n := range next {
		if _, ok := want[n.ID]; ok {
			continue
		}
		tl := p.sc.TLs[n.ID]
		if tl == nil {
			continue
		}
		dist[n.ID] = n.DistM
		want[n.ID] = n.LinkIndex
	}
	ids := sortedIDs(want)
	if len(ids) == 0 {
		return p.release(now, nil)
	}
	q := p.c.NewBatch()
	for _, id := range ids {
		q.Get(traci.CmdGetLane, traci.VarLaneHalt, p.sc.TLs[id].In[want[id]])
	}
	qr, err := q.Do()
	if err != nil {
		return err
	}
	active := map[string]int{}
	for i, id := range ids {
		eta := dist[id] / math.Max(8, speed)
		lead := p.o.PreemptS + float64(qr[i].Int())*2
		if eta <= lead {
			active[id] = want[id]
		}
	}
	set := p.c.NewBatch()
	for id, li := range active {
		g := p.gateway(id, now, set)
		if g == nil {
			continue
		}
		target := servingMain(g, li)
		if target < 0 {
			continue
		}
		if !p.held[id] {
			p.held[id] = true
			p.preemptions++
		}
		g.held = true
		if g.cur != target && !g.inTransition() {
			g.request(target, now)
		}
		if s, ok := g.advance(now); ok {
			set.SetString(traci.CmdSetTL, traci.VarTLState, id, s)
		}
	}
	if err := p.releaseInto(set, now, active); err != nil {
		return err
	}
	if set.Len() == 0 {
		set.Discard()
		return nil
	}
	_, err = set.Do()
	return err
}

// gateway returns the signal's gateway, taking it over from its program when the method does not drive it.
func (p *preemptor) gateway(id string, now float64, set *traci.Batch) *gateway {
	if g := p.gws[id]; g != nil {
		return g
	}
	if g := p.own[id]; g != nil {
		return g
	}
	tl := p.sc.TLs[id]
	if len(tl.Mains()) == 0 {
		return nil
	}
	// The program's phase now: read synchronously (rare: once per taken-over signal).
	b := p.c.NewBatch()
	b.Get(traci.CmdGetTL, traci.VarTLPhase, id)
	res, err := b.Do()
	if err != nil {
		return nil
	}
	g := newGateway(tl)
	ph := res[0].Int()
	if !tl.Main(ph) {
		// In a transition: finish it by the computed amber into the program's next main green.
		for k := 1; k <= len(tl.Phases); k++ {
			if j := (ph + k) % len(tl.Phases); tl.Main(j) {
				ph = j
				break
			}
		}
	}
	g.start(ph, now)
	g.shown = tl.Phases[ph].State
	p.own[id] = g
	return g
}

func (p *preemptor) release(now float64, active map[string]int) error {
	set := p.c.NewBatch()
	if err := p.releaseInto(set, now, active); err != nil {
		return err
	}
	if set.Len() == 0 {
		set.Discard()
		return nil
	}
	_, err := set.Do()
	return err
}

// releaseInto hands back the signals the vehicle no longer needs.
func (p *preemptor) releaseInto(set *traci.Batch, now float64, active map[string]int) error {
	for id := range p.held {
		if _, ok := active[id]; ok {
			continue
		}
		delete(p.held, id)
		if g := p.gws[id]; g != nil {
			g.held = false
			continue
		}
		if g := p.own[id]; g != nil {
			delete(p.own, id)
			set.SetString(traci.CmdSetTL, traci.VarTLSetPrg, id, g.tl.Program)
		}
	}
	return nil
}
