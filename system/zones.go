package system

import (
	"encoding/json"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"citybrain/api"
	"citybrain/api/cap"
	"citybrain/engine/zones"
	"citybrain/eventlog"
	"citybrain/replay/opendata"
)

// applyTyped carries out the operator actions of other types than incident actions (the log consumer's
// goroutine, in log order). A zone action that fails (a zone that exists, a bad polygon) is kept as its
// result for the API; it is not an error of the consumer.
func (s *System) applyTyped(seq uint64, typ string, data []byte) error {
	switch typ {
	case eventlog.TypeZone:
		var a zones.Action
		if err := json.Unmarshal(data, &a); err != nil {
			s.badMessages.Add(1)
			s.logger.Printf("skipping zone action at log message %d: cannot decode: %v", seq, err)
			return nil
		}
		s.Zones.ApplyAction(a)
	case eventlog.TypeDispatch:
		s.applyDispatch(seq, data)
	}
	return nil
}

// onAlert hands alerts that fired or changed to their outlets (the engine's tick goroutine: never blocks).
func (s *System) onAlert(list []zones.Alert) {
	if h := s.hubReady.Load(); h != nil {
		h.Broadcast("alerts", api.AlertMessage(list))
	}
	s.CAP.OnAlerts(list)
	if s.hooks != nil {
		s.hooks.Enqueue(list)
	}
}

// CAPSubject is where CAP messages are published (one XML document per message).
const CAPSubject = "citybrain.out.cap"

func (s *System) zoneRing(id string) [][2]float64 {
	z, _, ok := s.Zones.Zone(id)
	if !ok {
		return nil
	}
	return z.Polygon
}

// publishCAP sends a CAP message on NATS (core publish: buffered, never blocks the tick).
func (s *System) publishCAP(m cap.Message) {
	if s.nc == nil {
		return
	}
	msg := nats.NewMsg(CAPSubject)
	msg.Data = m.XML
	msg.Header.Set("Cap-Identifier", m.Alert.Identifier)
	msg.Header.Set("Cap-Msg-Type", m.Alert.MsgType)
	msg.Header.Set("Content-Type", "application/cap+xml")
	if err := s.nc.PublishMsg(msg); err != nil {
		s.logger.Printf("cannot publish CAP message %s: %v", m.Alert.Identifier, err)
	}
}

// openData is the open-data service over the log and the engine (replay/opendata).
func (s *System) openData(res int) *opendata.Service {
	var netFF map[uint64]float64
	if s.cfg.Network != nil {
		netFF = s.cfg.Network.CellFreeFlowKmh(res)
	}
	var mu sync.Mutex
	var learned map[uint64]float64
	var learnedAt time.Time
	freeFlow := func(cell uint64) (float64, bool) {
		if v, ok := netFF[cell]; ok && v > 0 {
			return v, true
		}
		mu.Lock()
		defer mu.Unlock()
		if learned == nil || time.Since(learnedAt) > time.Minute {
			learned = map[uint64]float64{}
			for _, v := range s.Engine.All() {
				learned[v.Cell] = v.FreeFlowKmh
			}
			learnedAt = time.Now()
		}
		v, ok := learned[cell]
		return v, ok
	}
	return &opendata.Service{
		Src: opendata.Source{Log: s.Log, Res: res, Network: s.cfg.Network, FreeFlow: freeFlow,
			Incidents: s.Engine.Incidents},
		Dir:       filepath.Join(s.cfg.DataDir, "opendata"),
		Watermark: func() int64 { return s.Engine.Status().Watermark },
	}
}

// replayZones makes a replay session's zones manager, seeded with the zones defined now (a replay of a past
// period judges today's zones; zone actions in the replayed range apply on top).
func (s *System) replayZones(res int) func(func([]zones.Alert)) *zones.Manager {
	return func(onAlert func([]zones.Alert)) *zones.Manager {
		m := zones.New(zones.Config{Res: res, Network: s.cfg.Network, OnAlert: onAlert})
		for _, z := range s.Zones.Zones() {
			m.ApplyAction(zones.Action{ID: "seed-" + z.ID, Op: "create", Zone: &z, By: z.CreatedBy, Role: z.Role, TS: z.CreatedAt})
		}
		return m
	}
}
