package engine

// Aggregate is one base cell's sums over one window, as the history store keeps them (history package):
// additive, so that cells and time steps can be summed.
type Aggregate struct {
	Cell     uint64
	Lat, Lng float64
	SpeedSum float64 // Σ weight × speed
	SpeedW   float64 // Σ weight
	TPI      float64 // the cell's TPI over the window (0 without speed observations)
	Samples  uint32  // speed observations
	Events   uint32
}

// Aggregates returns the published sums of window w (an index into Windows) of every base cell that has
// events in it, in no particular order.
func (e *Engine) Aggregates(w int) []Aggregate {
	var out []Aggregate
	for _, v := range e.All() {
		st := &v.W[w]
		if st.Events == 0 {
			continue
		}
		a := Aggregate{Cell: v.Cell, Lat: v.Lat, Lng: v.Lng, SpeedSum: st.SpeedSum, SpeedW: st.SpeedW,
			Samples: st.Samples, Events: st.Events}
		if st.SpeedW > 0 {
			a.TPI = v.Derive(w).TPI
		}
		out = append(out, a)
	}
	return out
}

// ActiveIncidentsAt returns the positions of the incidents active now (for the history of incident counts).
func (e *Engine) ActiveIncidentsAt() [][2]float64 {
	var out [][2]float64
	for _, in := range e.Incidents() {
		if in.Active() {
			out = append(out, [2]float64{in.Lat, in.Lng})
		}
	}
	return out
}
