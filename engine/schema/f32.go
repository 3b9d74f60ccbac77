package schema

import "strconv"

// F32 widens a float32 measurement to the float64 whose shortest decimal form equals the float32's shortest
// decimal form (18.2f → 18.2, not 18.200000762939453), so values read back print as they were sent.
func F32(f float32) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil {
		return float64(f)
	}
	return v
}
