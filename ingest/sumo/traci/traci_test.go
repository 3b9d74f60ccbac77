package traci

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func dataDir() string {
	if d := os.Getenv("CITYBRAIN_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "..", "shared", "data")
}

// FreePort returns a free local TCP port.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestTraCIBologna drives 60 s of the Bologna scenario over TraCI: version, steps, traffic-light phases and a
// forced phase, lane counts.
func TestTraCIBologna(t *testing.T) {
	sumo, err := exec.LookPath("sumo")
	if err != nil {
		t.Skip("skipping: sumo is not installed (scripts/install-sumo.sh)")
	}
	dir := filepath.Join(dataDir(), "sumo", "bologna-acosta")
	if _, err := os.Stat(filepath.Join(dir, "run.sumocfg")); err != nil {
		t.Skipf("skipping: Bologna scenario missing (%v); set CITYBRAIN_DATA", err)
	}
	port := freePort(t)
	cmd := exec.Command(sumo, "-n", filepath.Join(dir, "acosta_buslanes.net.xml"),
		"-r", filepath.Join(dir, "acosta.rou.xml"), "-a", filepath.Join(dir, "acosta_vtypes.add.xml"),
		"--no-step-log", "true", "--no-warnings", "true", "--remote-port", strconv.Itoa(port), "--end", "100")
	cmd.Env = append(os.Environ(), "SUMO_HOME=/usr/share/sumo")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	c, err := Dial("127.0.0.1:"+strconv.Itoa(port), 20*time.Second)
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Version()
	if err != nil || v == "" {
		t.Fatalf("version %q: %v", v, err)
	}
	b := c.NewBatch()
	b.Get(CmdGetTL, VarIDList, "")
	res, err := b.Do()
	if err != nil {
		t.Fatal(err)
	}
	tls := res[0].Strings()
	if len(tls) < 5 {
		t.Fatalf("traffic lights %v", tls)
	}
	for i := 0; i < 60; i++ {
		if err := c.Step(); err != nil {
			t.Fatal(err)
		}
	}
	b = c.NewBatch()
	b.Get(CmdGetSim, VarSimTime, "")
	b.SetInt(CmdSetTL, VarTLSetPh, tls[0], 1)
	b.Get(CmdGetTL, VarTLPhase, tls[0])
	b.Get(CmdGetTL, VarTLState, tls[0])
	b.Get(CmdGetVeh, VarIDList, "")
	b.Get(CmdGetVeh, VarRoadID, "no-such-vehicle")
	res, err = b.Do()
	if err != nil {
		t.Fatal(err)
	}
	if tm := res[0].Float(); tm != 60 {
		t.Errorf("simulation time %v after 60 steps", tm)
	}
	if res[1].Err != nil || res[2].Int() != 1 || res[3].String() == "" {
		t.Errorf("set phase 1: err %v, phase now %d, state %q", res[1].Err, res[2].Int(), res[3].String())
	}
	if len(res[4].Strings()) == 0 {
		t.Error("no vehicles after 60 s")
	}
	if res[5].Err == nil {
		t.Error("unknown vehicle gave no error")
	}
	veh := res[4].Strings()[0]
	b = c.NewBatch()
	b.Get(CmdGetVeh, VarNextTLS, veh)
	b.Get(CmdGetVeh, VarSpeed, veh)
	res, err = b.Do()
	if err != nil || res[0].Err != nil || res[1].Float() < 0 {
		t.Fatalf("vehicle %s: %v %v %v", veh, err, res[0].Err, res[1].Float())
	}
	t.Logf("%s; %d traffic lights; vehicle %s next signals %+v", v, len(tls), veh, res[0].NextTLS())

	// Subscriptions: departures, a vehicle's position and speed, a lane's counts, every step.
	if _, err := c.Subscribe(CmdSubSim, "", VarDepartedIDs); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(CmdSubVeh, veh, VarPosition, VarSpeed, VarLaneID)
	if err != nil || len(sub.Vals) != 3 {
		t.Fatalf("vehicle subscription: %+v %v", sub, err)
	}
	if x, y, ok := sub.Vals[0].Pos(); !ok || x == 0 && y == 0 {
		t.Errorf("position %v %v %v", x, y, ok)
	}
	lane := sub.Vals[2].String()
	if _, err := c.Subscribe(CmdSubLane, lane, VarLaneN, VarLaneHalt); err != nil {
		t.Fatal(err)
	}
	departures, laneSeen := 0, 0
	for i := 0; i < 20; i++ {
		subs, err := c.StepSubs()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			switch {
			case s.Cmd == CmdSubSim+0x10 && len(s.Vals) == 1:
				departures += len(s.Vals[0].Strings())
			case s.Cmd == CmdSubLane+0x10 && s.ID == lane && len(s.Vals) == 2 && s.Vals[0].Int() >= 0:
				laneSeen++
			}
		}
	}
	if departures == 0 || laneSeen != 20 {
		t.Errorf("20 steps: %d departures, lane %s reported %d times", departures, lane, laneSeen)
	}
	// An empty batch sends nothing (SUMO would close the connection).
	if res, err := c.NewBatch().Do(); err != nil || res != nil {
		t.Errorf("empty batch: %v %v", res, err)
	}
	if err := c.Step(); err != nil {
		t.Errorf("step after an empty batch: %v", err)
	}
}
