package registry

import (
	"sort"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine/schema"
)

// Assets are the city's fixed and moving sources other than probes and units: transit vehicles, cameras,
// loop detectors and IoT sensors, each with its latest event (in event time). The map shows them as layers.

// MaxAssetsPerKind bounds the registry; past it the asset updated longest ago is forgotten (lru.go).
const MaxAssetsPerKind = 200_000

// assetPublishEvery limits how often the dispatcher rebuilds the published unit and asset lists.
const assetPublishEvery = time.Second

func isAsset(k schema.Kind) bool {
	return k == schema.KindTransit || k == schema.KindVideo || k == schema.KindDetector || k == schema.KindSensor
}

type assetKey struct {
	kind schema.Kind
	id   string
}

// trackAssets records the asset rows of rec (dispatcher goroutine); an event older than the asset's latest is
// ignored. A batch often holds several events of one asset (a camera, a bus): only the one it keeps is read
// into an Event (the newest; of equal times the last, as row by row), so a batch costs one read per asset.
func (r *Registry) trackAssets(rec arrow.Record, kinds *array.Uint8) {
	var ids *array.String
	var ts *array.Timestamp
	if r.assetLatest == nil {
		r.assetLatest = map[assetKey]int{}
	}
	latest := r.assetLatest
	defer clear(latest) // its keys are views into rec
	for i := 0; i < kinds.Len(); i++ {
		k := schema.Kind(kinds.Value(i))
		if !isAsset(k) {
			continue
		}
		if ids == nil {
			ids = rec.Column(schema.ColID).(*array.String)
			ts = rec.Column(schema.ColTS).(*array.Timestamp)
		}
		key := assetKey{k, ids.Value(i)}
		if j, ok := latest[key]; !ok || ts.Value(i) >= ts.Value(j) {
			latest[key] = i
		}
	}
	if ids == nil {
		return
	}
	for i := 0; i < kinds.Len(); i++ { // in row order, so the LRU order is the row order of the rows kept
		k := schema.Kind(kinds.Value(i))
		if !isAsset(k) {
			continue
		}
		key := assetKey{k, ids.Value(i)}
		if latest[key] != i {
			continue
		}
		if a, ok := r.assets[key]; ok && a.TS > int64(ts.Value(i)) {
			continue
		}
		var ev schema.Event
		schema.ReadEvent(rec, i, &ev)
		key.id = ev.ID
		order := r.assetOrder[k]
		if _, ok := r.assets[key]; !ok && order.len() >= r.maxAssets {
			if old, ok := order.oldest(); ok {
				delete(r.assets, assetKey{k, old})
			}
		}
		r.assets[key] = ev
		order.touch(key.id)
		r.assetsDirty = true
	}
}

// Publish publishes the unit and asset lists if they changed, at most once per assetPublishEvery
// unless force (dispatcher state: Apply's goroutine, or applyMu held). Rebuilding a sorted list per batch
// would put a sort of every unit and asset on the ingest path.
func (r *Registry) Publish(force bool) {
	if !r.unitsDirty && !r.assetsDirty || !force && time.Since(r.assetsPublished) < assetPublishEvery {
		return
	}
	if r.unitsDirty {
		r.publishUnits()
	}
	if r.assetsDirty {
		r.publishAssets()
	}
	r.assetsPublished = time.Now()
}

func (r *Registry) publishAssets() {
	list := make([]schema.Event, 0, len(r.assets))
	for _, a := range r.assets {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Kind != list[j].Kind {
			return list[i].Kind < list[j].Kind
		}
		return list[i].ID < list[j].ID
	})
	r.assetSnap.Store(&list)
	r.assetsDirty = false
}

// Assets returns the latest event of every transit vehicle, camera, detector and sensor, by kind then id
// (a shared slice: do not modify). It lags the log by at most a second.
func (r *Registry) Assets() []schema.Event { return *r.assetSnap.Load() }
