// Package evtime holds the arithmetic of event time that the engine's windows, the detector, the adapters and
// the evaluation share: which step of a fixed length an instant falls in, for instants before 1970 too.
// Event times are Unix milliseconds; steps are positive lengths in the same unit.
package evtime

// Index is the number of the step of length step that t falls in: t/step rounded toward negative infinity,
// so that -1 ms falls in step -1, not 0 as Go's truncating division would put it.
func Index(t, step int64) int64 {
	q := t / step
	if t%step != 0 && (t < 0) != (step < 0) {
		q--
	}
	return q
}

// Floor is the start of the step of length step that t falls in.
func Floor(t, step int64) int64 { return Index(t, step) * step }
