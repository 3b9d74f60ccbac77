package engine

import (
	"sort"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// Assets are the city's fixed and moving sources other than probes and units: transit vehicles, cameras,
// loop detectors and IoT sensors, each with its latest event (in event time). The map shows them as layers.

// maxAssetsPerKind bounds the registry; past it the asset seen longest ago is forgotten.
const maxAssetsPerKind = 200_000

// assetPublishEvery limits how often the dispatcher rebuilds the published unit and asset lists.
const assetPublishEvery = time.Second

func isAsset(k Kind) bool {
	return k == KindTransit || k == KindVideo || k == KindDetector || k == KindSensor
}

type assetKey struct {
	kind Kind
	id   string
}

// trackAssets records the asset rows of rec (dispatcher goroutine); an event older than the asset's latest is
// ignored.
func (e *Engine) trackAssets(rec arrow.Record, kinds *array.Uint8) {
	var ids *array.String
	var ts *array.Timestamp
	for i := 0; i < kinds.Len(); i++ {
		k := Kind(kinds.Value(i))
		if !isAsset(k) {
			continue
		}
		if ids == nil {
			ids = rec.Column(ColID).(*array.String)
			ts = rec.Column(ColTS).(*array.Timestamp)
		}
		key := assetKey{k, ids.Value(i)}
		if a, ok := e.assets[key]; ok && a.TS > int64(ts.Value(i)) {
			continue
		}
		var ev Event
		ReadEvent(rec, i, &ev)
		key.id = ev.ID
		if _, ok := e.assets[key]; !ok {
			e.assetCount[k]++
			if e.assetCount[k] > maxAssetsPerKind {
				e.forgetOldestAsset(k)
			}
		}
		e.assets[key] = ev
		e.assetsDirty = true
	}
}

// publishRegistries publishes the unit and asset lists if they changed, at most once per assetPublishEvery
// unless force (dispatcher state: Apply's goroutine, or applyMu held). Rebuilding a sorted list per batch
// would put a sort of every unit and asset on the ingest path.
func (e *Engine) publishRegistries(force bool) {
	if !e.unitsDirty && !e.assetsDirty || !force && time.Since(e.assetsPublished) < assetPublishEvery {
		return
	}
	if e.unitsDirty {
		e.publishUnits()
	}
	if e.assetsDirty {
		e.publishAssets()
	}
	e.assetsPublished = time.Now()
}

func (e *Engine) publishAssets() {
	list := make([]Event, 0, len(e.assets))
	for _, a := range e.assets {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Kind != list[j].Kind {
			return list[i].Kind < list[j].Kind
		}
		return list[i].ID < list[j].ID
	})
	e.assetSnap.Store(&list)
	e.assetsDirty = false
}

func (e *Engine) forgetOldestAsset(k Kind) {
	var oldest assetKey
	var ts int64 = 1 << 62
	for key, a := range e.assets {
		if key.kind == k && a.TS < ts {
			oldest, ts = key, a.TS
		}
	}
	delete(e.assets, oldest)
	e.assetCount[k]--
}

// Assets returns the latest event of every transit vehicle, camera, detector and sensor, by kind then id
// (a shared slice: do not modify). It lags the log by at most a second.
func (e *Engine) Assets() []Event { return *e.assetSnap.Load() }
