//! Grids of small grayscale images for reports (an autoencoder's inputs beside its
//! reconstructions), and single gray or RGB images (the images a classifier got wrong), as PNG
//! files embedded in the HTML as `data:` URLs. The PNG is written directly (8-bit, one
//! zlib-compressed IDAT chunk, rows unfiltered; PNG spec, ISO/IEC 15948): these few lines are
//! all the report needs, and the tests decode them back.

use flate2::Crc;
use flate2::write::ZlibEncoder;
use std::io::Write;

/// Lays out rows of images (each `height × width` values, row-major) as one grayscale picture
/// with a 1-pixel gap between images, and returns it as PNG bytes. Values are mapped linearly
/// from `range` (low → white, high → black: ink on paper) and clamped.
pub fn grid_png(rows: &[Vec<&[f64]>], height: usize, width: usize, range: (f64, f64)) -> Vec<u8> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let (w, h) = (columns * (width + 1) + 1, rows.len() * (height + 1) + 1);
    let mut pixels = vec![255u8; w * h];
    let (low, high) = range;
    let span = if high > low { high - low } else { 1.0 };
    for (r, row) in rows.iter().enumerate() {
        for (c, image) in row.iter().enumerate() {
            for (i, &v) in image.iter().take(height * width).enumerate() {
                let ink = ((v - low) / span).clamp(0.0, 1.0);
                let (y, x) = (
                    r * (height + 1) + 1 + i / width,
                    c * (width + 1) + 1 + i % width,
                );
                pixels[y * w + x] = (255.0 * (1.0 - ink)).round() as u8;
            }
        }
    }
    png_gray(w, h, &pixels)
}

/// An 8-bit grayscale PNG of `width × height` pixels (row-major).
pub fn png_gray(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    png(width, height, 1, pixels)
}

/// An 8-bit PNG of `width × height` pixels (row-major), gray (`channels` 1) or RGB (3,
/// interleaved `r g b r g b ...`).
pub fn png(width: usize, height: usize, channels: usize, pixels: &[u8]) -> Vec<u8> {
    assert!(channels == 1 || channels == 3, "gray or RGB");
    assert_eq!(
        pixels.len(),
        width * height * channels,
        "a byte per channel"
    );
    let stride = width * channels;
    let mut raw = Vec::with_capacity((stride + 1) * height);
    for row in pixels.chunks(stride.max(1)) {
        raw.push(0); // filter type 0: the row as it is
        raw.extend_from_slice(row);
    }
    let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).expect("writing to memory");
    let idat = z.finish().expect("writing to memory");
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    // Bit depth 8, colour type 0 (grayscale) or 2 (RGB), deflate, adaptive filtering, no
    // interlace.
    let colour = if channels == 3 { 2 } else { 0 };
    ihdr.extend_from_slice(&[8, colour, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &idat[..]),
        (b"IEND", &[][..]),
    ] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&crc.sum().to_be_bytes());
    }
    png
}

/// Standard base64 (RFC 4648, with padding), for `data:` URLs.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn a_png_decodes_back_to_its_pixels() {
        // Parse the chunks back: signature, IHDR fields, CRCs, and the inflated rows.
        let pixels: Vec<u8> = (0..15).map(|i| (i * 17) as u8).collect();
        let png = png_gray(5, 3, &pixels);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut at = 8;
        let mut chunks = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = png[at + 4..at + 8].to_vec();
            let data = png[at + 8..at + 8 + len].to_vec();
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            let mut check = Crc::new();
            check.update(&kind);
            check.update(&data);
            assert_eq!(crc, check.sum());
            chunks.push((kind, data));
            at += 12 + len;
        }
        let kinds: Vec<&[u8]> = chunks.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(kinds, [&b"IHDR"[..], b"IDAT", b"IEND"]);
        assert_eq!(&chunks[0].1[..8], &[0, 0, 0, 5, 0, 0, 0, 3]);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&chunks[1].1[..]),
            &mut raw,
        )
        .unwrap();
        let rows: Vec<&[u8]> = raw.chunks(6).collect();
        for (y, row) in rows.iter().enumerate() {
            assert_eq!(row[0], 0);
            assert_eq!(&row[1..], &pixels[y * 5..(y + 1) * 5]);
        }
    }

    #[test]
    fn an_rgb_png_decodes_back_to_its_pixels() {
        let pixels: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7) as u8).collect();
        let png = png(4, 3, 3, &pixels);
        let back = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!(back.color(), image::ColorType::Rgb8);
        assert_eq!((back.width(), back.height()), (4, 3));
        assert_eq!(back.to_rgb8().into_raw(), pixels);
    }

    #[test]
    fn a_grid_places_each_image_with_gaps_in_ink_on_paper() {
        let a = [0.0, 1.0, 0.5, 2.0]; // 2x2; 2.0 is clamped to the range's top
        let png = grid_png(&[vec![&a[..], &a[..]]], 2, 2, (0.0, 1.0));
        let mut pixels = Vec::new();
        // IDAT starts after the signature (8) and IHDR (4 + 4 + 13 + 4).
        let len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&png[41..41 + len]),
            &mut pixels,
        )
        .unwrap();
        // 2 images of 2 columns with gaps: 7 wide, 4 high (+1 filter byte per row).
        let rows: Vec<&[u8]> = pixels.chunks(8).map(|r| &r[1..]).collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0], [255; 7]);
        assert_eq!(rows[1], [255, 255, 0, 255, 255, 0, 255]);
        assert_eq!(rows[2], [255, 128, 0, 255, 128, 0, 255]);
        assert_eq!(rows[3], [255; 7]);
    }
}
