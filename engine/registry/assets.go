package registry

import (
	"container/list"
	"slices"
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

// assetEntry is an asset's latest event and its place in its kind's LRU order.
type assetEntry struct {
	ev schema.Event
	el *list.Element
}

// trackAssets records the asset rows of rec (dispatcher goroutine); an event older than the asset's latest is
// ignored. A batch often holds several events of one asset (a camera, a bus): only the one it keeps is read
// into an Event (the newest; of equal times the last, as row by row), so a batch costs one read per asset,
// and the rows kept are taken in row order, so the LRU order is the row order of the rows kept.
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
	keep := r.assetRows[:0]
	for _, i := range latest {
		keep = append(keep, i)
	}
	slices.Sort(keep)
	r.assetRows = keep
	rd := schema.NewEventReader(rec)
	for _, i := range keep {
		k := schema.Kind(kinds.Value(i))
		key := assetKey{k, ids.Value(i)}
		order := r.assetOrder[k]
		a, ok := r.assets[key]
		if ok {
			if a.ev.TS > int64(ts.Value(i)) {
				continue
			}
			rd.Read(i, &a.ev) // its id stays the map key's
			order.order.MoveToFront(a.el)
		} else {
			if order.len() >= r.maxAssets {
				if old, ok := order.oldest(); ok {
					delete(r.assets, assetKey{k, old})
				}
			}
			a = &assetEntry{}
			rd.Read(i, &a.ev)
			r.assets[assetKey{k, a.ev.ID}] = a
			order.touch(a.ev.ID)
			a.el = order.at[a.ev.ID]
		}
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
		list = append(list, a.ev)
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
