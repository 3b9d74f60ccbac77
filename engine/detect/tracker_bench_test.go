package detect

import (
	"fmt"
	"testing"
)

// BenchmarkTrackerBucket is the detector's cost per 10-s bucket on a city of 60 signalised streets of 5 links
// (300 m each; 300 links) carrying 3,000 probe vehicles with a fix every 5 s, every tenth vehicle standing 2
// minutes mid-link (holds, stops and queues for the judges to read): one op feeds a bucket's fixes and advances
// the watermark past it (measure, the judges, learning). The first 20 minutes warm the baselines outside the
// timer. go test -run '^$' -bench TrackerBucket -benchmem ./engine/detect/
func BenchmarkTrackerBucket(b *testing.B) {
	const streets, per, vehicles, bucket = 60, 5, 3000, int64(10_000)
	var links []Link
	for s := range streets {
		for k := range per {
			i := int32(s*per + k)
			l := Link{LengthM: 300, FreeKmh: 50, Lanes: 2, Signal: true}
			if k > 0 {
				l.Up = []int32{i - 1}
			}
			if k < per-1 {
				l.Down = []int32{i + 1}
			}
			links = append(links, l)
		}
	}
	type veh struct {
		id        string
		street    int
		pos, kmh  float64 // metres along the street, km/h
		standFrom int64
		standTo   int64
	}
	vs := make([]veh, vehicles)
	for i := range vs {
		vs[i] = veh{id: fmt.Sprint("v", i), street: i % streets, pos: float64(i * 37 % (per * 300)), kmh: 30 + float64(i%20)}
		if i%10 == 0 {
			vs[i].standFrom, vs[i].standTo = int64(i%600)*1000, int64(i%600)*1000+120_000
		}
	}
	tk := NewTracker(links, bucket)
	ts := int64(0)
	step := func() {
		for f := int64(0); f < bucket; f += 5_000 {
			t := ts + f
			for i := range vs {
				v := &vs[i]
				kmh := v.kmh
				if v.standFrom <= t%1_200_000 && t%1_200_000 < v.standTo {
					kmh = 0
				}
				v.pos += kmh / 3.6 * 5
				if v.pos >= per*300 {
					v.pos -= per * 300
				}
				k := int(v.pos / 300)
				tk.AddFix(v.id, t0+t+int64(i%5_000), int32(v.street*per+k), float32(v.pos-float64(k)*300), kmh)
			}
		}
		ts += bucket
		tk.Advance(t0+ts-30_000, func(int64, []Features) {})
	}
	for ts < 20*60_000 {
		step()
	}
	b.ResetTimer()
	for range b.N {
		step()
	}
}
