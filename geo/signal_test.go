package geo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Bologna net's seven signals come with their programs and controlled movements; the scenario's tls
// additional file replaces them with its "utopia" programs.
func TestSUMOSignalsBologna(t *testing.T) {
	dir := filepath.Join(dataDir(t), "sumo", "bologna-acosta")
	n, err := LoadSUMONetFile(filepath.Join(dir, "acosta_buslanes.net.xml"))
	if err != nil {
		t.Skipf("skipping: Bologna net missing (%v); set CITYBRAIN_DATA", err)
	}
	sigs := n.Signals()
	if len(sigs) != 7 {
		t.Fatalf("%d signals, want 7", len(sigs))
	}
	s, ok := n.Signal("219")
	if !ok || len(s.Links) != 16 || len(s.Nodes) != 1 {
		t.Fatalf("signal 219: %+v", s)
	}
	// linkIndex 6 of 219: lane 2 of link 71 turning left into 67.
	if l := s.Links[6]; l.From != "71" || l.FromLane != "71_2" || l.To != "67" || l.Turn != TurnLeft {
		t.Errorf("219 link 6 = %+v", l)
	}
	if byNode, ok := n.Signal(s.Nodes[0]); !ok || byNode != s {
		t.Errorf("signal by node %s: %v", s.Nodes[0], byNode)
	}
	if _, ln, ok := n.Lane("71_2"); !ok || ln.ID != "71_2" {
		t.Errorf("lane 71_2 not found")
	}
	f, err := os.Open(filepath.Join(dir, "acosta_tls.add.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := n.ApplySUMOPrograms(f)
	if err != nil || k != 7 {
		t.Fatalf("applied %d programs: %v", k, err)
	}
	s, _ = n.Signal("219")
	if s.Program != "utopia" || len(s.Phases) != 21 || s.Phases[0].DurS != 24 || s.Phases[0].State != "GrrrrrrrrrrGGGGG" {
		t.Errorf("219 after the additional file: program %q, %d phases, first %+v", s.Program, len(s.Phases), s.Phases[0])
	}
	s, _ = n.Signal("209")
	if s.Phases[0].MinS != 45 || s.Phases[0].MaxS != 117 {
		t.Errorf("209 first phase %+v, want min 45 max 117", s.Phases[0])
	}
	if _, err := n.ApplySUMOPrograms(strings.NewReader(`<additional><tlLogic id="219"><phase duration="5" state="Gr"/></tlLogic></additional>`)); err == nil {
		t.Error("a program with fewer links than the signal was accepted")
	}
}
