package sumo

import (
	"errors"
	"strings"
	"testing"

	"citybrain/engine"
	"citybrain/ingest"
)

// checkFuzzResult asserts the readers' contract on arbitrary input: no panic (the fuzzer catches it), every
// emitted event valid, and every failure a *ParseError with a line.
func checkFuzzResult(t *testing.T, evs []engine.Event, err error) {
	for i := range evs {
		if verr := ingest.Validate(&evs[i]); verr != nil {
			t.Fatalf("emitted invalid event %+v: %v", evs[i], verr)
		}
	}
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line < 1 {
			t.Fatalf("error %v is not a *ParseError with a line", err)
		}
		if !strings.HasPrefix(err.Error(), "cannot read ") {
			t.Fatalf("error %q does not start with 'cannot read '", err)
		}
	}
}

func FuzzFCD(f *testing.F) {
	f.Add(fcdSnippet, 0.0, 0.0)
	f.Add(fcdSnippet, 0.5, 10.0)
	f.Add(syntheticFCD(3, 5, "bus"), 0.3, 2.0)
	f.Add(`<fcd-export><timestep time="0:00:01"><vehicle id="v" x="11.3" y="44.5" speed="1" angle="-720"/><person id="p"/></timestep></fcd-export>`, 1.0, 0.5)
	f.Add(`<fcd-export><timestep time="1e300"><vehicle id="v" x="-180" y="90" speed="1e308"/></timestep></fcd-export>`, 1.0, 0.0)
	f.Fuzz(func(t *testing.T, in string, pen, interval float64) {
		var evs []engine.Event
		_, err := ReadFCD(strings.NewReader(in), FCDOptions{Start: testStart, Penetration: pen, Interval: interval},
			func(e engine.Event) error { evs = append(evs, e); return nil })
		if err != nil && (pen < 0 || pen > 1 || pen != pen || interval < 0 || interval != interval || interval > 1e308) {
			return // option errors
		}
		checkFuzzResult(t, evs, err)
	})
}

func FuzzE1(f *testing.F) {
	f.Add(e1Snippet)
	f.Add(strings.Replace(e1Snippet, `begin="0.00"`, `begin="00:00:30"`, 1))
	f.Add(`<detector><interval begin="0" end="1e-9" id="0.127_2.73_6_1__l0" flow="1e308" occupancy="100.4" speed="1e308"/></detector>`)
	f.Add(`<detector><interval begin="0" end="60" id="0.127_2.73_6_1__l0" nVehContrib="3" occupancy="1" speed="-1"/></detector>`)
	sites := map[string]Site{
		"0.127_2.73_6_1__l0": {Lane: "104_0", Lat: 44.5, Lng: 11.3},
		"0.127_2.73_4_1__l0": {Lane: "15_0", Lat: 44.49, Lng: 11.32},
	}
	f.Fuzz(func(t *testing.T, in string) {
		var evs []engine.Event
		_, err := ReadE1(strings.NewReader(in), E1Options{Start: testStart, Sites: sites},
			func(e engine.Event) error { evs = append(evs, e); return nil })
		checkFuzzResult(t, evs, err)
		_, err = ReadDetectors(strings.NewReader(in))
		checkFuzzResult(t, nil, err)
	})
}
