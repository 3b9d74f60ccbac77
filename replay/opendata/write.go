package opendata

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// Schemas of the Parquet files (docs/opendata.md).
var (
	rowSchema = func(key string, name bool) *arrow.Schema {
		f := []arrow.Field{
			{Name: "bin_start", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
			{Name: key, Type: arrow.BinaryTypes.String},
		}
		if name {
			f = append(f, arrow.Field{Name: "name", Type: arrow.BinaryTypes.String})
		}
		return arrow.NewSchema(append(f,
			arrow.Field{Name: "lat", Type: arrow.PrimitiveTypes.Float64},
			arrow.Field{Name: "lng", Type: arrow.PrimitiveTypes.Float64},
			arrow.Field{Name: "speed_kmh", Type: arrow.PrimitiveTypes.Float64},
			arrow.Field{Name: "samples", Type: arrow.PrimitiveTypes.Int32},
			arrow.Field{Name: "free_flow_kmh", Type: arrow.PrimitiveTypes.Float64},
			arrow.Field{Name: "congestion", Type: arrow.PrimitiveTypes.Float64},
			arrow.Field{Name: "tpi", Type: arrow.PrimitiveTypes.Float64},
			arrow.Field{Name: "level", Type: arrow.BinaryTypes.String},
		), nil)
	}
	CellSchema     = rowSchema("cell", false)
	LinkSchema     = rowSchema("link_id", true)
	IncidentSchema = arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "type", Type: arrow.BinaryTypes.String},
		{Name: "severity", Type: arrow.PrimitiveTypes.Int32},
		{Name: "status", Type: arrow.BinaryTypes.String},
		{Name: "first_evidence_at", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "detected_at", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "cleared_at", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "cell", Type: arrow.BinaryTypes.String},
		{Name: "lat", Type: arrow.PrimitiveTypes.Float64},
		{Name: "lng", Type: arrow.PrimitiveTypes.Float64},
		{Name: "evidence_count", Type: arrow.PrimitiveTypes.Int32},
		{Name: "evidence_kinds", Type: arrow.BinaryTypes.String},
	}, nil)
)

// Record builds the Arrow record of one data set of d (the caller releases it).
func (d *Day) Record(dataset string, mem memory.Allocator) (arrow.Record, error) {
	switch dataset {
	case Cells, Links:
		rows, schema := d.Cells, CellSchema
		if dataset == Links {
			rows, schema = d.Links, LinkSchema
		}
		b := array.NewRecordBuilder(mem, schema)
		defer b.Release()
		off := 0
		for _, r := range rows {
			b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Bin))
			b.Field(1).(*array.StringBuilder).Append(r.Key)
			off = 2
			if dataset == Links {
				b.Field(2).(*array.StringBuilder).Append(r.Name)
				off = 3
			}
			b.Field(off).(*array.Float64Builder).Append(r.Lat)
			b.Field(off + 1).(*array.Float64Builder).Append(r.Lng)
			b.Field(off + 2).(*array.Float64Builder).Append(r.SpeedKmh)
			b.Field(off + 3).(*array.Int32Builder).Append(r.Samples)
			b.Field(off + 4).(*array.Float64Builder).Append(r.FreeFlow)
			b.Field(off + 5).(*array.Float64Builder).Append(r.Congestion)
			b.Field(off + 6).(*array.Float64Builder).Append(r.TPI)
			b.Field(off + 7).(*array.StringBuilder).Append(r.Level)
		}
		return b.NewRecord(), nil
	case Incidents:
		b := array.NewRecordBuilder(mem, IncidentSchema)
		defer b.Release()
		ts := func(i int, v int64) {
			tb := b.Field(i).(*array.TimestampBuilder)
			if v == 0 {
				tb.AppendNull()
			} else {
				tb.Append(arrow.Timestamp(v))
			}
		}
		for _, r := range d.Incidents {
			b.Field(0).(*array.StringBuilder).Append(r.ID)
			b.Field(1).(*array.StringBuilder).Append(r.Type)
			b.Field(2).(*array.Int32Builder).Append(r.Severity)
			b.Field(3).(*array.StringBuilder).Append(r.Status)
			b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(r.FirstEvidenceAt))
			ts(5, r.DetectedAt)
			ts(6, r.ClearedAt)
			b.Field(7).(*array.StringBuilder).Append(r.Cell)
			b.Field(8).(*array.Float64Builder).Append(r.Lat)
			b.Field(9).(*array.Float64Builder).Append(r.Lng)
			b.Field(10).(*array.Int32Builder).Append(r.EvidenceCount)
			b.Field(11).(*array.StringBuilder).Append(r.EvidenceKinds)
		}
		return b.NewRecord(), nil
	}
	return nil, fmt.Errorf("cannot build data set %q: cells, links or incidents", dataset)
}

// WriteParquet writes one data set of d as a Parquet file.
func (d *Day) WriteParquet(w io.Writer, dataset string, mem memory.Allocator) error {
	rec, err := d.Record(dataset, mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithAllocator(mem), parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(true))
	fw, err := pqarrow.NewFileWriter(rec.Schema(), struct{ io.Writer }{w}, props,
		pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem), pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("cannot start Parquet file: %w", err)
	}
	if err := fw.Write(rec); err != nil {
		fw.Close()
		return fmt.Errorf("cannot write Parquet %s %s: %w", dataset, d.Date, err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("cannot close Parquet %s %s: %w", dataset, d.Date, err)
	}
	return nil
}

// WriteGeoJSON writes one data set of d as a GeoJSON FeatureCollection of points (the cell's centre, the
// link's midpoint, the incident's coarsened cell).
func (d *Day) WriteGeoJSON(w io.Writer, dataset string) error {
	type feature struct {
		Type       string         `json:"type"`
		Geometry   map[string]any `json:"geometry"`
		Properties map[string]any `json:"properties"`
	}
	fc := struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}{Type: "FeatureCollection", Features: []feature{}}
	pt := func(lat, lng float64) map[string]any {
		return map[string]any{"type": "Point", "coordinates": []float64{lng, lat}}
	}
	iso := func(ms int64) any {
		if ms == 0 {
			return nil
		}
		return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	switch dataset {
	case Cells, Links:
		rows, key := d.Cells, "cell"
		if dataset == Links {
			rows, key = d.Links, "link_id"
		}
		for _, r := range rows {
			p := map[string]any{"bin_start": iso(r.Bin), key: r.Key, "speed_kmh": r.SpeedKmh, "samples": r.Samples,
				"free_flow_kmh": r.FreeFlow, "congestion": r.Congestion, "tpi": r.TPI, "level": r.Level}
			if dataset == Links {
				p["name"] = r.Name
			}
			fc.Features = append(fc.Features, feature{"Feature", pt(r.Lat, r.Lng), p})
		}
	case Incidents:
		for _, r := range d.Incidents {
			fc.Features = append(fc.Features, feature{"Feature", pt(r.Lat, r.Lng), map[string]any{
				"id": r.ID, "type": r.Type, "severity": r.Severity, "status": r.Status,
				"first_evidence_at": iso(r.FirstEvidenceAt), "detected_at": iso(r.DetectedAt), "cleared_at": iso(r.ClearedAt),
				"cell": r.Cell, "evidence_count": r.EvidenceCount, "evidence_kinds": r.EvidenceKinds}})
		}
	default:
		return fmt.Errorf("cannot write data set %q: cells, links or incidents", dataset)
	}
	enc := json.NewEncoder(w)
	return enc.Encode(&fc)
}
