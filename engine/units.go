package engine

import (
	"sort"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// Unit is the latest known state of an emergency unit (from `unit` events, in event time).
type Unit struct {
	ID       string
	Type     string // ambulance, police, fire, tow, rescue
	Status   string // available, en_route, on_scene, busy, offline
	Lat, Lng float64
	SpeedKmh float64 // NaN when not reported
	TS       int64   // event time of the latest position
	Source   string
}

// maxUnits bounds the unit registry; past it the unit seen longest ago is forgotten.
const maxUnits = 100_000

// trackUnits records the unit rows of rec (dispatcher goroutine). Positions older than the unit's latest are
// ignored, so out-of-order events do not move a unit backwards.
func (e *Engine) trackUnits(rec arrow.Record, kinds *array.Uint8) {
	var ids *array.String
	var ts *array.Timestamp
	for i := 0; i < kinds.Len(); i++ {
		if Kind(kinds.Value(i)) != KindUnit {
			continue
		}
		if ids == nil {
			ids = rec.Column(ColID).(*array.String)
			ts = rec.Column(ColTS).(*array.Timestamp)
		}
		id := ids.Value(i)
		t := int64(ts.Value(i))
		if u, ok := e.units[id]; ok && u.TS > t {
			continue
		}
		u := Unit{ID: cloneStr(id), Type: readStr(rec, ColUnitType, i), Status: readStr(rec, ColStatus, i),
			Lat: rec.Column(ColLat).(*array.Float64).Value(i), Lng: rec.Column(ColLng).(*array.Float64).Value(i),
			SpeedKmh: readF32(rec, ColSpeed, i), TS: t, Source: readStr(rec, ColSource, i)}
		if len(e.units) >= maxUnits {
			e.forgetOldestUnit()
		}
		e.units[u.ID] = u
		e.unitsDirty = true
	}
}

// publishUnits rebuilds the published unit list (dispatcher state: Apply's goroutine, or applyMu held).
func (e *Engine) publishUnits() {
	list := make([]Unit, 0, len(e.units))
	for _, u := range e.units {
		list = append(list, u)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	e.unitSnap.Store(&list)
	e.unitsDirty = false
}

func (e *Engine) forgetOldestUnit() {
	var oldest string
	var ts int64 = 1 << 62
	for id, u := range e.units {
		if u.TS < ts {
			oldest, ts = id, u.TS
		}
	}
	delete(e.units, oldest)
}

// Units returns the latest state of every unit, by id (a shared slice: do not modify).
func (e *Engine) Units() []Unit { return *e.unitSnap.Load() }
