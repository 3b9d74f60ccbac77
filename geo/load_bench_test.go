package geo

import (
	"bytes"
	"testing"
)

func benchLoad(b *testing.B, rel string, load func(*bytes.Reader) error) {
	data := readDataFile(b, rel)
	if data == nil {
		b.Skipf("skipping: real data %s is not available (set CITYBRAIN_DATA)", rel)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := load(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadCityBrainNanchang(b *testing.B) {
	benchLoad(b, "citybrain/nanchang/roadnet.txt", func(r *bytes.Reader) error { _, err := LoadCityBrain(r); return err })
}

func BenchmarkLoadSUMONetBologna(b *testing.B) {
	benchLoad(b, "sumo/bologna-acosta/acosta_buslanes.net.xml", func(r *bytes.Reader) error { _, err := LoadSUMONet(r); return err })
}

func BenchmarkCellFreeFlowNanchang(b *testing.B) {
	n, err := LoadCityBrainFile(dataFile(b, "citybrain/nanchang/roadnet.txt"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n.CellFreeFlowKmh(DefaultRes)
	}
}
