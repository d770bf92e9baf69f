//! The edit list of an MP4/M4A/MOV audio track: which span of the decoded media is the
//! presentation. AAC encoders prime the decoder with silent samples (1024 or more) and pad
//! the last frame; the container says, in the track's edit list, where the audio really
//! starts and how long it is. symphonia (0.5 and 0.6) ignores edit lists, so decoded AAC
//! would start 23 ms late with a tail of padding: measured on `jfk.flac` encoded by ffmpeg,
//! that shift alone took the correlation with ffmpeg's decode from 0.99999999 to -0.03.
//! Only the boxes on the way to `elst` are read (a box walk over the file's bytes).

/// The presented span of the audio track, in seconds of its media.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Edit {
    /// Media time at which the presentation starts (priming to drop).
    pub start_s: f64,
    /// Presented duration, when the edit gives one.
    pub duration_s: Option<f64>,
}

/// The first sound track's first non-empty edit, if the bytes are an ISO-BMFF file with one.
pub(crate) fn audio_edit(bytes: &[u8]) -> Option<Edit> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    let moov = boxes(bytes).find(|(kind, _)| kind == b"moov")?.1;
    let movie_timescale = timescale(child(moov, b"mvhd")?)?;
    boxes(moov)
        .filter(|(kind, _)| kind == b"trak")
        .find_map(|(_, trak)| sound_edit(trak, movie_timescale))
}

fn sound_edit(trak: &[u8], movie_timescale: u32) -> Option<Edit> {
    let mdia = child(trak, b"mdia")?;
    let handler = child(mdia, b"hdlr")?;
    if handler.get(8..12)? != b"soun" {
        return None;
    }
    let media_timescale = timescale(child(mdia, b"mdhd")?)?;
    let elst = child(child(trak, b"edts")?, b"elst")?;
    let version = *elst.first()?;
    let count = u32::from_be_bytes(elst.get(4..8)?.try_into().ok()?) as usize;
    let entry_bytes = if version == 1 { 20 } else { 12 };
    (0..count.min(64)).find_map(|i| {
        let e = elst.get(8 + i * entry_bytes..8 + (i + 1) * entry_bytes)?;
        let (duration, media_time) = if version == 1 {
            (
                u64::from_be_bytes(e[0..8].try_into().ok()?),
                i64::from_be_bytes(e[8..16].try_into().ok()?),
            )
        } else {
            (
                u32::from_be_bytes(e[0..4].try_into().ok()?) as u64,
                i32::from_be_bytes(e[4..8].try_into().ok()?) as i64,
            )
        };
        // media_time -1 is an empty edit (a pause before the media): not audio to place.
        (media_time >= 0).then(|| Edit {
            start_s: media_time as f64 / media_timescale as f64,
            duration_s: (duration > 0).then(|| duration as f64 / movie_timescale as f64),
        })
    })
}

/// The timescale of an `mvhd` or `mdhd` box body.
fn timescale(body: &[u8]) -> Option<u32> {
    let at = if *body.first()? == 1 { 20 } else { 12 };
    let scale = u32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
    (scale > 0).then_some(scale)
}

fn child<'a>(parent: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(parent).find(|(k, _)| k == kind).map(|(_, body)| body)
}

/// The boxes directly inside `data`: (type, body). Stops at the first malformed header.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let header = data.get(at..at + 8)?;
        let size32 = u32::from_be_bytes(header[0..4].try_into().ok()?) as usize;
        let kind: [u8; 4] = header[4..8].try_into().ok()?;
        let (size, body_at) = match size32 {
            0 => (data.len() - at, 8),
            1 => (
                u64::from_be_bytes(data.get(at + 8..at + 16)?.try_into().ok()?) as usize,
                16,
            ),
            n => (n, 8),
        };
        if size < body_at || at.checked_add(size)? > data.len() {
            return None;
        }
        let body = &data[at + body_at..at + size];
        at += size;
        Some((kind, body))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn header_v0(timescale: u32) -> Vec<u8> {
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&timescale.to_be_bytes());
        b.extend_from_slice(&[0u8; 4]);
        b
    }

    #[test]
    fn reads_the_sound_tracks_edit() {
        let mut elst = vec![0u8, 0, 0, 0];
        elst.extend_from_slice(&2u32.to_be_bytes());
        // An empty edit (a pause), then 11 s of media from sample 1024 at 44.1 kHz.
        elst.extend_from_slice(&500u32.to_be_bytes());
        elst.extend_from_slice(&(-1i32).to_be_bytes());
        elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        elst.extend_from_slice(&11_000u32.to_be_bytes());
        elst.extend_from_slice(&1024i32.to_be_bytes());
        elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(b"soun");
        let mdia = [bx(b"mdhd", &header_v0(44_100)), bx(b"hdlr", &hdlr)].concat();
        let trak = [bx(b"edts", &bx(b"elst", &elst)), bx(b"mdia", &mdia)].concat();
        let moov = [bx(b"mvhd", &header_v0(1000)), bx(b"trak", &trak)].concat();
        let file = [bx(b"ftyp", b"M4A \0\0\0\0"), bx(b"moov", &moov)].concat();
        let edit = audio_edit(&file).expect("edit");
        assert!((edit.start_s - 1024.0 / 44_100.0).abs() < 1e-12);
        assert_eq!(edit.duration_s, Some(11.0));
        assert_eq!(
            audio_edit(&file[..40]),
            None,
            "truncated: no edit, no panic"
        );
        assert_eq!(audio_edit(b"RIFF....WAVE"), None);
    }
}
