//! Where a mark goes on a page, and how large: its box (the mark's own
//! size, `natural`) is scaled, turned about its centre and placed at its
//! position or in a grid across the page. Pure arithmetic, so it is tested
//! here without drawing.

use docconv::proto::v1::{PdfMark, PdfMarkLayer, PdfMarkPosition};

/// Distance of an edge or corner mark from the page's edges, in points.
pub const MARGIN: f32 = 36.0;
/// What a fitted mark may cover of the page's width and height.
const FILL: f32 = 0.8;
/// Text size when neither font_size nor scale says and it is not fitted.
const TEXT_SIZE: f32 = 24.0;
/// An image's width, as a fraction of the page's, when scale is 0.
const IMAGE_SCALE: f32 = 0.5;
/// Space between tiles, as a fraction of a tile's turned box.
const TILE_GAP: f32 = 0.5;
/// Most tiles on a page: a tiny mark on a large page would otherwise
/// write millions of them. Past this, tiles are spaced wider.
const MAX_TILES: f32 = 2500.0;

/// How large a mark is drawn on a page.
#[derive(Debug, Clone, Copy)]
pub enum Size {
    /// Text: `natural` is the box of the text at 1 pt.
    Text,
    /// An image: `natural` is its box at width 1.
    Image,
}

/// The PDF matrices ([a b c d e f]) that map the mark's box, from (0, 0)
/// to `natural`, onto a page of `width` × `height` points: one per place
/// the mark is drawn.
pub fn placements(
    mark: &PdfMark,
    layer: PdfMarkLayer,
    size: Size,
    natural: (f32, f32),
    (width, height): (f32, f32),
) -> Vec<[f32; 6]> {
    let is_text = matches!(size, Size::Text);
    let default_angle = if is_text && layer == PdfMarkLayer::Background { 45.0 } else { 0.0 };
    let radians = mark.angle.unwrap_or(default_angle).to_radians();
    let (sin, cos) = radians.sin_cos();
    // The turned box of the mark at scale 1.
    let turned = |w: f32, h: f32| (w * cos.abs() + h * sin.abs(), w * sin.abs() + h * cos.abs());
    let (unit_w, unit_h) = turned(natural.0, natural.1);
    let position = PdfMarkPosition::try_from(mark.position).unwrap_or_default();
    let centred = matches!(position, PdfMarkPosition::Unspecified | PdfMarkPosition::Center);
    let scale = match size {
        Size::Text if mark.font_size > 0.0 => mark.font_size,
        _ if mark.scale > 0.0 => mark.scale * width / natural.0,
        Size::Text if centred && !mark.tiled => (FILL * width / unit_w).min(FILL * height / unit_h),
        Size::Text => TEXT_SIZE,
        Size::Image => IMAGE_SCALE * width / natural.0,
    };
    let (box_w, box_h) = (unit_w * scale, unit_h * scale);
    let matrix = |cx: f32, cy: f32| {
        // Centre of the mark to (cx, cy), turned, scaled.
        let (hw, hh) = (natural.0 * scale / 2.0, natural.1 * scale / 2.0);
        let (a, b, c, d) = (cos * scale, sin * scale, -sin * scale, cos * scale);
        [a, b, c, d, cx - (cos * hw - sin * hh), cy - (sin * hw + cos * hh)]
    };
    if mark.tiled {
        let (mut step_x, mut step_y) = (box_w * (1.0 + TILE_GAP), box_h * (1.0 + TILE_GAP));
        if !(step_x > 0.0 && step_y > 0.0) {
            return Vec::new();
        }
        let tiles = (width / step_x + 2.0) * (height / step_y + 2.0);
        if tiles > MAX_TILES {
            let spread = (tiles / MAX_TILES).sqrt();
            (step_x, step_y) = (step_x * spread, step_y * spread);
        }
        // A grid through the page's centre, as far as tiles touch the page.
        let columns = (width / 2.0 / step_x).ceil() as i32 + 1;
        let rows = (height / 2.0 / step_y).ceil() as i32 + 1;
        let mut all = Vec::new();
        for row in -rows..=rows {
            for column in -columns..=columns {
                let (cx, cy) = (width / 2.0 + column as f32 * step_x, height / 2.0 + row as f32 * step_y);
                let touches = (cx - width / 2.0).abs() < (width + box_w) / 2.0
                    && (cy - height / 2.0).abs() < (height + box_h) / 2.0;
                if touches {
                    all.push(matrix(cx, cy));
                }
            }
        }
        return all;
    }
    let left = MARGIN + box_w / 2.0;
    let right = width - MARGIN - box_w / 2.0;
    let bottom = MARGIN + box_h / 2.0;
    let top = height - MARGIN - box_h / 2.0;
    let (mid_x, mid_y) = (width / 2.0, height / 2.0);
    let (cx, cy) = match position {
        PdfMarkPosition::Unspecified | PdfMarkPosition::Center => (mid_x, mid_y),
        PdfMarkPosition::TopLeft => (left, top),
        PdfMarkPosition::Top => (mid_x, top),
        PdfMarkPosition::TopRight => (right, top),
        PdfMarkPosition::Left => (left, mid_y),
        PdfMarkPosition::Right => (right, mid_y),
        PdfMarkPosition::BottomLeft => (left, bottom),
        PdfMarkPosition::Bottom => (mid_x, bottom),
        PdfMarkPosition::BottomRight => (right, bottom),
    };
    vec![matrix(cx, cy)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the matrix puts a point of the mark's box.
    fn apply(m: [f32; 6], (x, y): (f32, f32)) -> (f32, f32) {
        (m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5])
    }

    fn close(a: (f32, f32), b: (f32, f32)) -> bool {
        (a.0 - b.0).abs() < 0.01 && (a.1 - b.1).abs() < 0.01
    }

    #[test]
    fn background_text_is_turned_and_fitted_to_the_page_centre() {
        let mark = PdfMark { text: "DRAFT".into(), ..Default::default() };
        let natural = (3.0, 1.0);
        let placed = placements(&mark, PdfMarkLayer::Background, Size::Text, natural, (600.0, 800.0));
        assert_eq!(placed.len(), 1);
        let m = placed[0];
        assert!(close(apply(m, (1.5, 0.5)), (300.0, 400.0)), "centred: {m:?}");
        // 45°: the text's baseline rises to the right.
        let (start, end) = (apply(m, (0.0, 0.0)), apply(m, (3.0, 0.0)));
        assert!(((end.1 - start.1) - (end.0 - start.0)).abs() < 0.01);
        // The turned box spans 80% of the narrower side.
        let size = (m[0] * m[0] + m[1] * m[1]).sqrt();
        let turned = (3.0 + 1.0) * std::f32::consts::FRAC_1_SQRT_2 * size;
        assert!((turned - 480.0).abs() < 0.1, "{turned}");
    }

    #[test]
    fn corners_keep_the_margin_and_sizes_follow_the_options() {
        let mark = PdfMark { position: PdfMarkPosition::TopRight as i32, scale: 0.25, ..Default::default() };
        let placed = placements(&mark, PdfMarkLayer::Stamp, Size::Image, (1.0, 0.5), (400.0, 300.0));
        let m = placed[0];
        // 100 × 50 points, its top right corner 36 points from the page's.
        assert!(close(apply(m, (1.0, 0.5)), (364.0, 264.0)), "{m:?}");
        assert!(close(apply(m, (0.0, 0.0)), (264.0, 214.0)), "{m:?}");
        let sized = PdfMark { font_size: 12.0, position: PdfMarkPosition::BottomLeft as i32, ..Default::default() };
        let m = placements(&sized, PdfMarkLayer::Stamp, Size::Text, (2.0, 1.0), (400.0, 300.0))[0];
        assert!(close(apply(m, (0.0, 0.0)), (36.0, 36.0)), "{m:?}");
        assert!(close(apply(m, (2.0, 1.0)), (60.0, 48.0)), "{m:?}");
    }

    #[test]
    fn tiles_cover_the_page() {
        let mark = PdfMark { tiled: true, angle: Some(0.0), font_size: 10.0, ..Default::default() };
        let placed = placements(&mark, PdfMarkLayer::Background, Size::Text, (10.0, 1.0), (200.0, 100.0));
        // 100 × 10 pt tiles every 150 × 15 pt.
        let centres: Vec<(f32, f32)> = placed.iter().map(|m| apply(*m, (5.0, 0.5))).collect();
        assert!(centres.iter().any(|&c| close(c, (100.0, 50.0))));
        assert!(centres.iter().any(|&c| close(c, (100.0, 95.0))));
        // Tiles that would only touch the page's edge are left out: one
        // column (at x 100; -50 and 250 lie outside), seven rows.
        assert_eq!(placed.len(), 7, "{centres:?}");
        // A tiny mark on a large page is spread out.
        let tiny = PdfMark { font_size: 0.01, ..mark };
        let placed = placements(&tiny, PdfMarkLayer::Background, Size::Text, (1.0, 1.0), (14_400.0, 14_400.0));
        assert!(placed.len() <= 2500 * 4, "{}", placed.len());
    }
}
