package sumo

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"citybrain/engine"
)

// fcdStream generates an endless-looking FCD document lazily: steps timesteps of n vehicles with ids that are
// new every timestep (so any per-vehicle state in the reader would show up as heap growth).
type fcdStream struct {
	steps, n, step, v int
	buf               []byte
	done              bool
}

func (s *fcdStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		switch {
		case s.done:
			return 0, io.EOF
		case s.step == 0 && s.v == 0 && s.buf == nil:
			s.buf = []byte("<fcd-export>\n<timestep time=\"0.00\">\n")
			s.v = 0
		case s.v == s.n:
			s.step++
			s.v = 0
			if s.step == s.steps {
				s.buf = []byte("</timestep>\n</fcd-export>\n")
				s.done = true
			} else {
				s.buf = fmt.Appendf(s.buf[:0], "</timestep>\n<timestep time=\"%d.00\">\n", s.step)
			}
		default:
			s.buf = fmt.Appendf(s.buf[:0], "<vehicle id=\"v%d_%d\" x=\"11.3%04d\" y=\"44.49%03d\" angle=\"12.50\" type=\"passenger1\" speed=\"8.31\" pos=\"10.00\" lane=\"%d_0\" slope=\"0.00\"/>\n",
				s.step, s.v, s.v%10000, s.v%1000, s.v%300)
			s.v++
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func TestReadFCDConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, uint64(0)
	n := 0
	st, err := ReadFCD(&fcdStream{steps: 200, n: 1000}, FCDOptions{Start: testStart, Interval: 5}, func(engine.Event) error {
		n++
		if n%10000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Points != 200000 || n < 10000 {
		t.Fatalf("stats %+v, %d events", st, n)
	}
	if grow := int64(peak) - int64(base); grow > 4<<20 {
		t.Errorf("heap grew by %d bytes over 200k points of 200k distinct vehicles: want constant memory (< 4 MiB)", grow)
	}
}

func benchFCD(b *testing.B, opt FCDOptions) {
	in := syntheticFCD(100, 500, "passenger1")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var st FCDStats
	for i := 0; i < b.N; i++ {
		var err error
		st, err = ReadFCD(strings.NewReader(in), opt, func(engine.Event) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Points)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(st.Probes+st.Transit)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadFCD measures ReadFCD on 50,000 SUMO-formatted points (100 timesteps × 500 vehicles, ~7 MB).
func BenchmarkReadFCD(b *testing.B) { benchFCD(b, FCDOptions{Start: testStart}) }

// BenchmarkReadFCDSampled is ReadFCD at 10% penetration and a 10 s interval (parsing dominates).
func BenchmarkReadFCDSampled(b *testing.B) {
	benchFCD(b, FCDOptions{Start: testStart, Penetration: 0.1, Interval: 10})
}

// BenchmarkReadE1 measures ReadE1 on 20,000 intervals.
func BenchmarkReadE1(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("<detector>\n")
	sites := map[string]Site{}
	for i := 0; i < 20000; i++ {
		id := fmt.Sprintf("det%d", i%200)
		sites[id] = Site{Lane: "1_0", Lat: 44.49, Lng: 11.33}
		fmt.Fprintf(&sb, `    <interval begin="%d.00" end="%d.00" id="%s" nVehContrib="5" flow="300.00" occupancy="22.61" speed="11.26" harmonicMeanSpeed="9.75" length="5.00" nVehEntered="6"/>`+"\n",
			i/200*60, i/200*60+60, id)
	}
	sb.WriteString("</detector>\n")
	in := sb.String()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ReadE1(strings.NewReader(in), E1Options{Start: testStart, Sites: sites}, func(engine.Event) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(20000*float64(b.N)/b.Elapsed().Seconds(), "intervals/s")
}

// BenchmarkReadFCDBologna reads the FCD of 300 simulated seconds of the real Bologna scenario (run by
// scripts/sumo/run-bologna.sh once per benchmark; skipped without sumo or the data).
func BenchmarkReadFCDBologna(b *testing.B) {
	out := runBologna(b, "300", "60")
	in, err := os.ReadFile(filepath.Join(out, "fcd.xml"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	var st FCDStats
	for i := 0; i < b.N; i++ {
		st, err = ReadFCD(bytes.NewReader(in), FCDOptions{Start: testStart}, func(engine.Event) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Points)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}
