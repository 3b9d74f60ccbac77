package geo

import (
	"strings"
	"testing"
)

func TestLoadCityBrainRealFiles(t *testing.T) {
	tests := []struct {
		dir                      string
		nodes, signalised, roads int
	}{
		{"hangzhou", 269, 247, 448},
		{"nanchang", 2048, 859, 3012},
		{"nanchang-small", 36, 22, 51},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			n, err := LoadCityBrainFile(dataFile(t, "citybrain/"+tt.dir+"/roadnet.txt"))
			if err != nil {
				t.Fatal(err)
			}
			sig := 0
			for _, nd := range n.Nodes() {
				if nd.Signalised {
					sig++
				}
			}
			if len(n.Nodes()) != tt.nodes || sig != tt.signalised || len(n.Links()) != 2*tt.roads {
				t.Errorf("got %d intersections (%d signalised), %d links; want %d (%d), %d",
					len(n.Nodes()), sig, len(n.Links()), tt.nodes, tt.signalised, 2*tt.roads)
			}
			// Approaches come from the signal lines: each is an incoming link, its Side matches the geometry
			// and its Slot is a position 0..3. Count how often the slot agrees with the compass side (logged,
			// reported in docs/geo.md) and whether slots run clockwise.
			total, agree, clockwise := 0, 0, 0
			for _, nd := range n.Nodes() {
				if !nd.Signalised {
					continue
				}
				var bearings []float64
				for _, a := range nd.Approaches {
					l, ok := n.Link(a.LinkID)
					if !ok || l.To != nd.ID || a.Slot < 0 || a.Slot > 3 {
						t.Fatalf("approach %+v of %s is not an incoming link with a slot", a, nd.ID)
					}
					from, _ := n.Node(l.From)
					b := BearingDeg(nd.LatLng, from.LatLng)
					if a.Side != sideFromBearing(b) {
						t.Fatalf("approach %+v of %s: side disagrees with bearing %.0f", a, nd.ID, b)
					}
					total++
					if a.Side == Side(a.Slot) {
						agree++
					}
					bearings = append(bearings, b)
				}
				turn := 0.0
				for i := range bearings {
					turn += normDeg(bearings[(i+1)%len(bearings)] - bearings[i])
				}
				if len(bearings) < 2 || turn <= 360.5 {
					clockwise++
				}
			}
			if total == 0 {
				t.Fatal("no approaches")
			}
			t.Logf("%s: slot = compass side for %d of %d approaches; slots clockwise at %d of %d signals",
				tt.dir, agree, total, clockwise, sig)
			if strings.HasPrefix(tt.dir, "nanchang") && clockwise != sig {
				t.Errorf("Nanchang slots run clockwise at %d of %d signals, want all", clockwise, sig)
			}
			// Hangzhou sits east of West Lake.
			if tt.dir == "hangzhou" {
				b := n.BBox()
				if b.MinLat < 30.2 || b.MaxLat > 30.3 || b.MinLng < 120.1 || b.MaxLng > 120.2 {
					t.Errorf("Hangzhou bbox %+v is not east of West Lake", b)
				}
			}
		})
	}
}

func TestLoadCityBrainLanesAndSpeed(t *testing.T) {
	n, err := LoadCityBrain(strings.NewReader(cityBrainSnippet))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := n.Link("2")
	if !ok || l.From != "B" || l.To != "A" || l.Lanes != 3 || l.LengthM != 177 {
		t.Fatalf("link 2 = %+v", l)
	}
	if l.SpeedLimitKmh < 49.99 || l.SpeedLimitKmh > 50.01 {
		t.Errorf("speed = %v km/h, want 50 (13.89 m/s)", l.SpeedLimitKmh)
	}
	want := []Turn{TurnLeft, TurnStraight, TurnRight | TurnStraight}
	for i, ln := range l.LaneInfo {
		if ln.Turns != want[i] || ln.ID != "2_"+string(rune('0'+i)) {
			t.Errorf("lane %d = %+v, want turns %v", i, ln, want[i])
		}
	}
	a, _ := n.Node("A")
	if len(a.Approaches) != 1 || a.Approaches[0] != (Approach{Side: SideEast, LinkID: "2", Slot: 1}) {
		t.Errorf("A approaches = %+v, want road 2 from the east", a.Approaches)
	}
}

// cityBrainSnippet has two intersections and one road, in the real format (trailing spaces included).
const cityBrainSnippet = `2
30.25 120.17 A 1 
30.25 120.172 B 0 
1
A B 177.0 13.88888888888889 3 3 1 2 
1 0 0 0 1 0 0 0 1 
1 0 0 0 1 0 0 1 1 
1
A -1 1 -1 -1 
`

func TestLoadCityBrainMalformed(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "line 0, want intersection count"},
		{"bad count", "x\n", "(line 1): want a intersection count"},
		{"short intersection", "1\n30 120 A\n", "(line 2): intersection wants 4 fields"},
		{"bad lat", "1\n91 120 A 1\n", "(line 2): intersection A has no valid position"},
		{"bad flag", "1\n30 120 A 2\n", "signalised flag \"2\""},
		{"truncated", "2\n30 120 A 1\n", "line 2, intersection 2 of 2"},
		{"duplicate", "2\n30 120 A 1\n30 120 A 1\n", "(line 3): duplicate intersection A"},
		{"unknown node", "1\n30 120 A 1\n1\nA Z 10 10 1 1 1 2\n", "(line 4): road 1/2: unknown intersection Z"},
		{"bad number", "1\n30 120 A 1\n1\nA A x 10 1 1 1 2\n", "(line 4): road 1/2: bad number"},
		{"lanes", "1\n30 120 A 1\n1\nA A 10 10 99 1 1 2\n", "lane counts 99/1 outside 0..32"},
		{"flags", "2\n30 120 A 1\n30 120.1 B 1\n1\nA B 10 10 1 1 1 2\n1 0\n", "(line 6): road 1: want 3 lane flags"},
		{"flag value", "2\n30 120 A 1\n30 120.1 B 1\n1\nA B 10 10 1 1 1 2\n1 0 7\n", "turn flag \"7\""},
		{"signal road", strings.Replace(cityBrainSnippet, "A -1 1 -1 -1", "A -1 9 -1 -1", 1), "(line 9): signal A names unknown road 9"},
		{"signal fields", strings.Replace(cityBrainSnippet, "A -1 1 -1 -1", "A -1 1", 1), "(line 9): signal wants 5 fields"},
		{"trailing", cityBrainSnippet + "junk\n", "(line 10): unexpected data after 1 signal lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCityBrain(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "cannot ") {
				t.Errorf("error %q does not start with \"cannot \"", err)
			}
		})
	}
}

func FuzzLoadCityBrain(f *testing.F) {
	f.Add([]byte(cityBrainSnippet))
	if b := readDataFile(f, "citybrain/nanchang-small/roadnet.txt"); b != nil {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := LoadCityBrain(strings.NewReader(string(in)))
		if err != nil {
			if n != nil {
				t.Fatal("network and error both returned")
			}
			return
		}
		for _, l := range n.Links() {
			if _, ok := n.Node(l.From); !ok {
				t.Fatalf("link %s from unknown node", l.ID)
			}
		}
	})
}
