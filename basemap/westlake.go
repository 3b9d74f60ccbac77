package basemap

import "citybrain/geo"

// WestLake returns the demo city's base map (geo.GenerateWestLake): West Lake inside its shore road, its
// islands and causeways as parkland, and the names of the neighbourhoods east of the lake at their real
// places, in Chinese and English.
func WestLake(seed int64) *Set {
	s := &Set{Source: "demo"}
	s.Features = append(s.Features, Feature{Kind: KindWater, Name: "West Lake", Names: map[string]string{"zh": "西湖", "en": "West Lake"},
		Rings: [][]geo.LatLng{geo.WestLakeOutline(seed)}})
	park := func(name, zh string, ring ...geo.LatLng) {
		ring = append(ring, ring[0])
		s.Features = append(s.Features, Feature{Kind: KindPark, Name: name, Names: map[string]string{"zh": zh, "en": name}, Rings: [][]geo.LatLng{ring}})
	}
	// Gushan island on the north shore, the Su Causeway across the west of the lake, the Bai Causeway from
	// Gushan to the Broken Bridge, the Three Pools Mirroring the Moon island (approximate outlines).
	park("Gushan", "孤山", geo.LatLng{Lat: 30.2568, Lng: 120.1352}, geo.LatLng{Lat: 30.2586, Lng: 120.1405}, geo.LatLng{Lat: 30.2572, Lng: 120.1452},
		geo.LatLng{Lat: 30.2547, Lng: 120.1430}, geo.LatLng{Lat: 30.2551, Lng: 120.1370})
	park("Su Causeway", "苏堤", geo.LatLng{Lat: 30.2600, Lng: 120.1322}, geo.LatLng{Lat: 30.2600, Lng: 120.1334}, geo.LatLng{Lat: 30.2290, Lng: 120.1402},
		geo.LatLng{Lat: 30.2290, Lng: 120.1390})
	park("Bai Causeway", "白堤", geo.LatLng{Lat: 30.2566, Lng: 120.1448}, geo.LatLng{Lat: 30.2573, Lng: 120.1450}, geo.LatLng{Lat: 30.2600, Lng: 120.1560},
		geo.LatLng{Lat: 30.2593, Lng: 120.1562})
	park("Three Pools Mirroring the Moon", "三潭印月", geo.LatLng{Lat: 30.2392, Lng: 120.1452}, geo.LatLng{Lat: 30.2406, Lng: 120.1475},
		geo.LatLng{Lat: 30.2392, Lng: 120.1498}, geo.LatLng{Lat: 30.2377, Lng: 120.1475})
	s.LabelPolygons()
	place := func(name, zh string, lat, lng float64, rank int) {
		s.Features = append(s.Features, Feature{Kind: KindLabel, Of: "place", Class: "suburb", Name: name,
			Names: map[string]string{"zh": zh, "en": name}, Rank: rank, Point: geo.LatLng{Lat: lat, Lng: lng}})
	}
	place("Hubin", "湖滨", 30.2575, 120.1680, 3)
	place("Wulin", "武林", 30.2765, 120.1660, 3)
	place("Xiaoying", "小营", 30.2560, 120.1800, 4)
	place("Chaoming", "潮鸣", 30.2720, 120.1850, 4)
	place("Qingbo", "清波", 30.2420, 120.1640, 4)
	place("Wangjiang", "望江", 30.2450, 120.1880, 4)
	place("Tianshui", "天水", 30.2680, 120.1720, 5)
	place("Changqing", "长庆", 30.2810, 120.1580, 5)
	place("Mishixiang", "米市巷", 30.2850, 120.1790, 5)
	return s
}
