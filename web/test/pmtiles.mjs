// A minimal PMTiles v3 writer for tests (github.com/protomaps/PMTiles spec v3): one raster PNG tile at zoom 0,
// uncompressed directory and metadata. Enough to check that the binary serves a local archive and that the map
// reads it through the pmtiles protocol.
import zlib from 'node:zlib';

function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

// png returns a 256×256 PNG of one colour with a lighter grid every 32 px.
export function png([r, g, b]) {
  const W = 256, rows = [];
  for (let y = 0; y < W; y++) {
    const row = Buffer.alloc(1 + W * 3);
    for (let x = 0; x < W; x++) {
      const grid = x % 32 === 0 || y % 32 === 0;
      row[1 + x * 3] = grid ? Math.min(255, r + 60) : r; row[2 + x * 3] = grid ? Math.min(255, g + 60) : g; row[3 + x * 3] = grid ? Math.min(255, b + 60) : b;
    }
    rows.push(row);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0); ihdr.writeUInt32BE(W, 4); ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

function varint(n) {
  const out = [];
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}

// rasterPMTiles returns a PMTiles archive holding one PNG tile at zoom 0 (the whole world).
export function rasterPMTiles(tile, meta = { name: 'test raster', attribution: 'test' }) {
  const dir = Buffer.from([...varint(1), ...varint(0), ...varint(1), ...varint(tile.length), ...varint(0 + 1)]);
  const metaBuf = Buffer.from(JSON.stringify(meta));
  const h = Buffer.alloc(127);
  h.write('PMTiles', 0, 'ascii'); h[7] = 3;
  const rootOff = 127, metaOff = rootOff + dir.length, dataOff = metaOff + metaBuf.length;
  const u64 = (o, v) => h.writeBigUInt64LE(BigInt(v), o);
  u64(8, rootOff); u64(16, dir.length); u64(24, metaOff); u64(32, metaBuf.length); u64(40, 0); u64(48, 0);
  u64(56, dataOff); u64(64, tile.length); u64(72, 1); u64(80, 1); u64(88, 1);
  h[96] = 1; h[97] = 1; h[98] = 1; h[99] = 2; h[100] = 0; h[101] = 0;
  h.writeInt32LE(-1800000000, 102); h.writeInt32LE(-850000000, 106); h.writeInt32LE(1800000000, 110); h.writeInt32LE(850000000, 114);
  h[118] = 0; h.writeInt32LE(0, 119); h.writeInt32LE(0, 123);
  return Buffer.concat([h, dir, metaBuf, tile]);
}
