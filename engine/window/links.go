package window

import (
	"time"

	"citybrain/engine/incident"
	"citybrain/engine/schema"
	"citybrain/geo"
)

// LinkView is the published state of one road link (all of it this shard saw; a link crossing shard
// boundaries has one view per shard, which Set.Links sums). Immutable once published.
type LinkView struct {
	Link      int32 // index into the network's Links()
	UpdatedAt int64
	W         [len(schema.Windows)]schema.WindowStats
}

// linkState is a link's buckets in one shard, owned by the shard goroutine.
type linkState struct {
	aggs   []agg
	lastTS int64
	view   *LinkView
}

func (s *shard) linkAdd(li int32, start, t int64, c *contribution, off float32) {
	ls := s.links[li]
	if ls == nil {
		ls = &linkState{}
		s.links[li] = ls
	}
	cs := cellState{aggs: ls.aggs}
	a := cs.bucket(start)
	c.addTo(a)
	if c.weight > 0 && c.speed < incident.StandstillKmh && (c.kind == schema.KindProbe || c.kind == schema.KindTransit) {
		a.addHead(1 + off)
	}
	ls.aggs = cs.aggs
	if t > ls.lastTS {
		ls.lastTS = t
	}
	s.dirtyLinks[li] = struct{}{}
}

// tickLinks recomputes the views of changed links (all of them when the clock entered a new bucket) and
// publishes them.
func (s *shard) tickLinks(now int64, all bool) {
	if len(s.links) == 0 {
		return
	}
	keepFrom := now - schema.Windows[len(schema.Windows)-1].Milliseconds() - s.w.bucketMs
	changed := map[int32]*LinkView{}
	var removed []int32
	visit := func(li int32, ls *linkState) {
		drop := 0
		for drop < len(ls.aggs) && ls.aggs[drop].start < keepFrom {
			drop++
		}
		ls.aggs = append(ls.aggs[:0], ls.aggs[drop:]...)
		if len(ls.aggs) == 0 {
			delete(s.links, li)
			removed = append(removed, li)
			return
		}
		v := &LinkView{Link: li, UpdatedAt: ls.lastTS}
		for i, w := range schema.Windows {
			from := now - w.Milliseconds()
			for j := range ls.aggs {
				if a := &ls.aggs[j]; a.start+s.w.bucketMs > from {
					v.W[i].Add(&a.WindowStats)
				}
			}
		}
		if ls.view == nil || *ls.view != *v {
			ls.view = v
			changed[li] = v
		}
	}
	if all {
		for li, ls := range s.links {
			visit(li, ls)
		}
	} else {
		for li := range s.dirtyLinks {
			if ls := s.links[li]; ls != nil {
				visit(li, ls)
			}
		}
	}
	clear(s.dirtyLinks)
	if len(changed) == 0 && len(removed) == 0 {
		return
	}
	old := *s.linkSnap.Load()
	next := make(map[int32]*LinkView, len(old)+len(changed))
	for k, v := range old {
		next[k] = v
	}
	for _, li := range removed {
		delete(next, li)
	}
	for li, v := range changed {
		next[li] = v
	}
	s.linkSnap.Store(&next)
}

// LinkStats is a link's published state summed over shards.
type LinkStats struct {
	Link      *geo.Link
	UpdatedAt int64
	W         [len(schema.Windows)]schema.WindowStats
	// Cell is the windows of the base cell the link's speed estimate leans on (LinkCell; zero when that
	// cell has no view): see Estimate.
	Cell [len(schema.Windows)]schema.WindowStats
}

// Links returns the state of every link with data whose geometry touches bbox.
func (w *Set) Links(bbox geo.BBox) []LinkStats {
	net := w.cfg.Network
	if net == nil {
		return nil
	}
	links := net.Links()
	byLink := map[int32]*LinkStats{}
	var order []int32
	for _, s := range w.shards {
		for li, v := range *s.linkSnap.Load() {
			ls := byLink[li]
			if ls == nil {
				l := links[li]
				if !touches(l, bbox) {
					continue
				}
				ls = &LinkStats{Link: l}
				byLink[li] = ls
				order = append(order, li)
			}
			for i := range v.W {
				ls.W[i].Add(&v.W[i])
			}
			ls.UpdatedAt = max(ls.UpdatedAt, v.UpdatedAt)
		}
	}
	out := make([]LinkStats, 0, len(order))
	for _, li := range order {
		out = append(out, *byLink[li])
	}
	cells := w.linkCells.Of(w.cfg.Network, w.cfg.Res)
	snaps := make([]map[uint64]*CellView, len(w.shards))
	for i, s := range w.shards {
		snaps[i] = *s.snap.Load()
	}
	AttachCells(out, func(i int) uint64 { return cells[order[i]] }, func(c uint64) *CellView {
		for _, m := range snaps {
			if v := m[c]; v != nil {
				return v
			}
		}
		return nil
	})
	return out
}

func touches(l *geo.Link, b geo.BBox) bool {
	for _, p := range l.Geometry {
		if b.Contains(p.Lat, p.Lng) {
			return true
		}
	}
	return false
}

// matchRows assigns a link to each probe, transit and detector row (dispatcher goroutine): probes and transit
// vehicles through the online map matcher (position, heading, the vehicle's previous match), detectors to
// the nearest link within 30 m.
// The position along the link is returned as a fraction of its length.
func (mw *matchWorker) matchRow(k schema.Kind, id string, ts int64, lat, lng, heading float64) (int32, float32) {
	switch k {
	case schema.KindProbe, schema.KindTransit:
		w := mw.set
		m, ok := mw.m.Match(id, time.UnixMilli(ts), lat, lng, heading)
		if !ok {
			return -1, 0
		}
		if li, ok := w.linkIdx[m.LinkID]; ok {
			return li, w.fraction(li, m.OffsetM)
		}
	case schema.KindDetector:
		w := mw.set
		if c := w.cfg.Network.Nearest(lat, lng, 30, 1); len(c) > 0 {
			if li, ok := w.linkIdx[c[0].Link.ID]; ok {
				return li, w.fraction(li, c[0].OffsetM)
			}
		}
	}
	return -1, 0
}

// fraction is offset m along link li as a fraction of the link's geometry length, in [0, 1].
func (w *Set) fraction(li int32, m float64) float32 {
	l := w.topo.LengthM(li)
	if l <= 0 {
		return 0
	}
	return float32(min(1, max(0, m/l)))
}
