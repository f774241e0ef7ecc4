//! The field engine: varying header fields planned once per stream (TRex's
//! field engine without the per-packet interpretation), written a burst at a
//! time — one column per field, or one table lookup per group of fields
//! whose combined sequence is short enough to prebuild.

use super::{finish_checksums, ipv4, udp, GroupedCx, Rng, FILL_MAX, HDR_VIEW};
use crate::config::{Field, FieldKind, FieldOp};
use wirespeed::mbuf::Mbuf;

/// Writes the low `W` bytes of `v` big-endian into `b` (`b.len() == W`).
#[inline(always)]
fn put<const W: usize>(b: &mut [u8], v: u64) {
    match W {
        1 => b[0] = v as u8,
        2 => b.copy_from_slice(&(v as u16).to_be_bytes()),
        4 => b.copy_from_slice(&(v as u32).to_be_bytes()),
        _ => b.copy_from_slice(&v.to_be_bytes()[8 - W..]),
    }
}

/// Stores a frame's checksums given one field's word sum `w`: `wi`/`wu`
/// say whether the field counts in the IPv4 / the UDP checksum.
#[derive(Clone, Copy)]
pub(super) struct Finish<'a> {
    cx: &'a GroupedCx,
    wi: u32,
    wu: u32,
}

impl Finish<'_> {
    #[inline(always)]
    fn store(&self, d: &mut [u8; HDR_VIEW], w: u32) {
        finish_checksums(self.cx, d, w * self.wi, w * self.wu);
    }
}

/// One varying field, planned once so the per-packet work is a store, an
/// add into the checksum sums it takes part in, and a step without a
/// division (TRex's field engine, without the per-packet interpretation).
#[derive(Debug, Clone)]
pub(super) struct FieldGen {
    pub(super) cur: u64,
    pub(super) min: u64,
    pub(super) max: u64,
    /// `max - min + 1` (0 when the range is all of u64).
    pub(super) span: u64,
    /// The step reduced modulo `span`, so one conditional wrap suffices.
    pub(super) step: u64,
    pub(super) op: FieldOp,
    pub(super) offset: usize,
    /// Bytes written: 1 (TOS), 2 (ports, VLAN TCI), 4 (IPv4), 6 (MAC).
    pub(super) width: u8,
    /// OR-ed into a 16-bit value as written (the VLAN priority bits).
    pub(super) write_or: u64,
    /// 1 when the field's 16-bit words count in the IPv4 header checksum,
    /// the UDP pseudo-header, the UDP header (0 otherwise): multipliers, so
    /// the sum needs no branch.
    pub(super) in_ip: u64,
    pub(super) in_pseudo: u64,
    pub(super) in_l4: u64,
    /// Stepped by a [`FieldGroup`]'s table (its own value is not advanced).
    pub(super) grouped: bool,
    /// Steps only when the field before it wrapped (an odometer).
    pub(super) nested: bool,
    /// A table of explicit values (`values = [...]`): then `cur`, `min`
    /// and `max` are indices into it and the value written is
    /// `values[cur]`; empty for a min..=max field.
    pub(super) values: Box<[u64]>,
}

impl FieldGen {
    /// The field in the plain Ethernet[/802.1Q]/IPv4/UDP frame (None for
    /// a kind that frame lacks; the config refuses those).
    pub(super) fn plan(f: &Field, ip: usize, udp: usize, vlan_prio_bits: u16) -> Option<FieldGen> {
        let (offset, width, write_or, in_ip, in_pseudo, in_l4) = match f.kind {
            FieldKind::DstMac => (0, 6, 0, 0, 0, 0),
            FieldKind::SrcMac => (6, 6, 0, 0, 0, 0),
            FieldKind::Vlan => (14, 2, vlan_prio_bits as u64, 0, 0, 0),
            // TOS is the low byte of the header's first word.
            FieldKind::Tos => (ip + ipv4::TOS, 1, 0, 1, 0, 0),
            FieldKind::SrcIp => (ip + ipv4::SRC.start, 4, 0, 1, 1, 0),
            FieldKind::DstIp => (ip + ipv4::DST.start, 4, 0, 1, 1, 0),
            FieldKind::SrcPort => (udp + udp::SPORT.start, 2, 0, 0, 0, 1),
            FieldKind::DstPort => (udp + udp::DPORT.start, 2, 0, 0, 0, 1),
            FieldKind::SrcIp6
            | FieldKind::DstIp6
            | FieldKind::TcpSeq
            | FieldKind::IcmpId
            | FieldKind::IcmpSeq
            | FieldKind::TunnelSport => return None,
        };
        let mut g = FieldGen::at(f, offset, width, write_or);
        (g.in_ip, g.in_pseudo, g.in_l4) = (in_ip, in_pseudo, in_l4);
        Some(g)
    }

    /// The field at `offset` (`width` bytes, `write_or` OR-ed into the
    /// value), counted in no incremental checksum sum: for layered frames,
    /// whose checksums are computed over the header per packet.
    pub(super) fn at(f: &Field, offset: usize, width: u8, write_or: u64) -> FieldGen {
        let span = (f.max - f.min).wrapping_add(1);
        let step = if span == 0 { f.step } else { f.step % span };
        FieldGen {
            cur: match f.op {
                FieldOp::Dec => f.max,
                _ => f.min,
            },
            min: f.min,
            max: f.max,
            span,
            step,
            op: f.op,
            offset,
            width,
            write_or,
            in_ip: 0,
            in_pseudo: 0,
            in_l4: 0,
            grouped: false,
            nested: f.nest,
            values: f.values.clone().into_boxed_slice(),
        }
    }

    /// The value in effect: `cur`, or the table entry it indexes.
    #[inline(always)]
    pub(super) fn value(&self) -> u64 {
        match self.values.get(self.cur as usize) {
            Some(&v) => v,
            None => self.cur,
        }
    }

    /// The last index of the values table (None for a range), lent out
    /// with the table for a burst's loop (see [`FieldGen::column`]).
    #[inline(always)]
    fn take_table(&mut self) -> Option<(Box<[u64]>, usize)> {
        if self.values.is_empty() {
            return None;
        }
        let t = std::mem::take(&mut self.values);
        let last = t.len() - 1;
        Some((t, last))
    }

    /// Writes this field's value into each frame of a burst (`W` bytes at
    /// its offset), adds its 16-bit words to `acc[k]` for frame k (when the
    /// checksums cover it), and steps once per frame; the step's kind is
    /// chosen once for the column.
    #[inline(always)]
    pub(super) fn column<const W: usize>(
        &mut self,
        views: &mut [Option<&mut [u8; HDR_VIEW]>],
        acc: Option<&mut [u32; FILL_MAX]>,
        rng: &mut Rng,
    ) {
        // The map from the stepped index to the value written: the
        // identity for a range, a table lookup for `values` (the index
        // stays within 0..=last; the min keeps the lookup free of a panic).
        match self.take_table() {
            None => self.column_by::<W>(views, acc, rng, |v| v),
            Some((t, last)) => {
                self.column_by::<W>(views, acc, rng, |i| t[(i as usize).min(last)]);
                self.values = t;
            }
        }
    }

    #[inline(always)]
    fn column_by<const W: usize>(
        &mut self,
        views: &mut [Option<&mut [u8; HDR_VIEW]>],
        acc: Option<&mut [u32; FILL_MAX]>,
        rng: &mut Rng,
        map: impl Fn(u64) -> u64 + Copy,
    ) {
        match self.op {
            FieldOp::Inc => {
                let (step, max, span) = (self.step, self.max, self.span);
                // Values fit 48 bits and the step is below the span: no
                // u64 overflow, one compare.
                self.column_with::<W>(views, acc, map, |c| {
                    let n = c + step;
                    if n > max {
                        n - span
                    } else {
                        n
                    }
                })
            }
            FieldOp::Dec => {
                let (step, min, span) = (self.step, self.min, self.span);
                self.column_with::<W>(views, acc, map, |c| {
                    if c < min + step {
                        c + span - step
                    } else {
                        c - step
                    }
                })
            }
            FieldOp::Random => {
                let (min, span) = (self.min, self.span);
                self.column_with::<W>(views, acc, map, |_| {
                    if span == 0 {
                        rng.next_u64()
                    } else {
                        min + ((rng.next_u64() as u128 * span as u128) >> 64) as u64
                    }
                })
            }
        }
    }

    /// The one-field form of [`FieldGen::column`]: one pass over the
    /// frames writes the field and hands each frame and the field's word
    /// sum to `finish` (which stores the checksums) — no header views
    /// collected first, no sums kept in memory.
    #[inline(always)]
    pub(super) fn fused<const W: usize>(
        &mut self,
        pkts: &mut [Mbuf],
        len: usize,
        rng: &mut Rng,
        cx: &GroupedCx,
    ) {
        match self.take_table() {
            None => self.fused_by::<W>(pkts, len, rng, cx, |v| v),
            Some((t, last)) => {
                self.fused_by::<W>(pkts, len, rng, cx, |i| t[(i as usize).min(last)]);
                self.values = t;
            }
        }
    }

    #[inline(always)]
    fn fused_by<const W: usize>(
        &mut self,
        pkts: &mut [Mbuf],
        len: usize,
        rng: &mut Rng,
        cx: &GroupedCx,
        map: impl Fn(u64) -> u64 + Copy,
    ) {
        let finish = Finish {
            cx,
            wi: self.in_ip as u32,
            wu: (self.in_pseudo + self.in_l4) as u32,
        };
        match self.op {
            FieldOp::Inc => {
                let (step, max, span) = (self.step, self.max, self.span);
                self.fused_with::<W>(pkts, len, finish, map, |c| {
                    let n = c + step;
                    if n > max {
                        n - span
                    } else {
                        n
                    }
                })
            }
            FieldOp::Dec => {
                let (step, min, span) = (self.step, self.min, self.span);
                self.fused_with::<W>(pkts, len, finish, map, |c| {
                    if c < min + step {
                        c + span - step
                    } else {
                        c - step
                    }
                })
            }
            FieldOp::Random if self.span == 0 => {
                self.fused_with::<W>(pkts, len, finish, map, |_| rng.next_u64())
            }
            FieldOp::Random => {
                let (min, span) = (self.min, self.span);
                self.fused_with::<W>(pkts, len, finish, map, |_| {
                    min + ((rng.next_u64() as u128 * span as u128) >> 64) as u64
                })
            }
        }
    }

    #[inline(always)]
    fn fused_with<const W: usize>(
        &mut self,
        pkts: &mut [Mbuf],
        len: usize,
        finish: Finish<'_>,
        map: impl Fn(u64) -> u64 + Copy,
        mut next: impl FnMut(u64) -> u64,
    ) {
        let (o, or) = (self.offset, self.write_or);
        if o + W > HDR_VIEW {
            return;
        }
        let mut v = self.cur;
        for m in pkts {
            // Buffers come with the frame's length (`alloc_bulk_len`) or the template's.
            if m.data_len() != len && m.set_len(len).is_err() {
                continue;
            }
            let Some(d) = m.data_mut().first_chunk_mut::<HDR_VIEW>() else {
                continue;
            };
            let x = map(v);
            put::<W>(&mut d[o..o + W], x | or);
            // A value fits its field: up to 4 bytes, two 16-bit words.
            let w = if W == 4 {
                (x >> 16) as u32 + (x & 0xffff) as u32
            } else if W <= 2 {
                x as u32
            } else {
                0
            };
            finish.store(d, w);
            v = next(v);
        }
        self.cur = v;
    }

    #[inline(always)]
    pub(super) fn column_with<const W: usize>(
        &mut self,
        views: &mut [Option<&mut [u8; HDR_VIEW]>],
        acc: Option<&mut [u32; FILL_MAX]>,
        map: impl Fn(u64) -> u64 + Copy,
        mut next: impl FnMut(u64) -> u64,
    ) {
        let (o, or) = (self.offset, self.write_or);
        if o + W > HDR_VIEW {
            return;
        }
        let mut v = self.cur;
        match acc {
            Some(a) => {
                for (k, d) in views.iter_mut().flatten().enumerate() {
                    let x = map(v);
                    put::<W>(&mut d[o..o + W], x | or);
                    // A value fits its field: up to 4 bytes, two 16-bit words.
                    a[k & (FILL_MAX - 1)] += if W == 4 {
                        (x >> 16) as u32 + (x & 0xffff) as u32
                    } else {
                        x as u32
                    };
                    v = next(v);
                }
            }
            None => {
                for d in views.iter_mut().flatten() {
                    put::<W>(&mut d[o..o + W], map(v) | or);
                    v = next(v);
                }
            }
        }
        self.cur = v;
    }

    /// Writes the current value into the frame; returns its 16-bit word sum
    /// as it appears in the checksums (0 for MAC and VLAN, which none covers).
    #[inline(always)]
    pub(super) fn write(&self, data: &mut [u8]) -> u64 {
        let v = self.value();
        let o = self.offset;
        match self.width {
            1 => {
                data[o] = v as u8;
                v & 0xff
            }
            2 => {
                data[o..o + 2].copy_from_slice(&((v | self.write_or) as u16).to_be_bytes());
                v & 0xffff
            }
            4 => {
                data[o..o + 4].copy_from_slice(&(v as u32).to_be_bytes());
                ((v >> 16) & 0xffff) + (v & 0xffff)
            }
            _ => {
                data[o..o + 6].copy_from_slice(&v.to_be_bytes()[2..8]);
                0
            }
        }
    }

    /// Steps to the next value: `inc`/`dec` wrap within min..=max with one
    /// compare (no division per packet); `random` maps 64 random bits onto
    /// the range by a multiply (Lemire's method).
    #[inline(always)]
    /// Returns true when it wrapped (a nested field after it steps then).
    pub(super) fn advance(&mut self, rng: &mut Rng) -> bool {
        let (v, wrapped) = match self.op {
            FieldOp::Inc => {
                let n = self.cur.wrapping_add(self.step);
                if n > self.max || n < self.cur {
                    (n.wrapping_sub(self.span), true)
                } else {
                    (n, false)
                }
            }
            FieldOp::Dec => {
                let n = self.cur.wrapping_sub(self.step);
                if n < self.min || n > self.cur {
                    (n.wrapping_add(self.span), true)
                } else {
                    (n, false)
                }
            }
            FieldOp::Random => {
                let v = if self.span == 0 {
                    rng.next_u64()
                } else {
                    self.min + ((rng.next_u64() as u128 * self.span as u128) >> 64) as u64
                };
                (v, false)
            }
        };
        self.cur = v;
        wrapped
    }
}

impl FieldGen {
    /// Packets after which this field's value repeats: `span / gcd(span,
    /// step)` for `inc`/`dec`; `None` for `random` or a full-u64 range.
    pub(super) fn cycle(&self) -> Option<u64> {
        if self.op == FieldOp::Random || self.span == 0 {
            return None;
        }
        Some(if self.step == 0 {
            1
        } else {
            self.span / gcd(self.span, self.step)
        })
    }
}

pub(super) fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Widest header window one field group covers (one 16-byte load and store).
const GROUP_SPAN: usize = 16;
/// Most prebuilt entries a group keeps (its fields' combined period; 24
/// bytes each: ≤ 384 KiB, read in order).
const GROUP_MAX: u64 = 16384;

/// One step of a field group: the bytes of its fields in the group's window
/// (zero elsewhere) and their 16-bit word sums as the two checksums take them.
#[derive(Debug, Clone, Copy)]
struct GroupEntry {
    bytes: [u8; GROUP_SPAN],
    /// Words in the IPv4 header checksum (TOS, addresses).
    ip: u32,
    /// Words in the UDP checksum (addresses in the pseudo-header, ports).
    udp: u32,
}

/// Deterministic fields near one another in the header whose combined
/// period is short, stepped together from a prebuilt table (TRex's field
/// engine cache, per group rather than per frame): per packet one table
/// read, a masked 16-byte (or 8-byte) store and two adds, instead of a store,
/// an add and a step per field.
#[derive(Debug, Clone)]
pub(super) struct FieldGroup {
    /// Window offset in the frame; the window is `GROUP_SPAN` or 8 bytes.
    start: usize,
    narrow: bool,
    /// Zeros over the group's field bytes in the window, ones elsewhere
    /// (the bytes a store keeps), for the 16- and the 8-byte window.
    keep: u128,
    keep8: u64,
    table: Vec<GroupEntry>,
    idx: usize,
}

/// See [`FieldGroup::cursor`].
pub(super) struct GroupCursor<'a> {
    table: &'a [GroupEntry],
    pub(super) idx: usize,
    start: usize,
    narrow: bool,
    keep: u128,
    keep8: u64,
}

impl GroupCursor<'_> {
    /// Writes the group's next values into one frame and steps: the words
    /// it adds to the frame's IPv4 and UDP sums. The per-frame form of
    /// [`FieldGroup::column`], for bursts where every field is grouped and
    /// the groups and both checksums are done in one pass per frame.
    #[inline(always)]
    pub(super) fn step_into(&mut self, d: &mut [u8; HDR_VIEW]) -> (u32, u32) {
        let Some(e) = self.table.get(self.idx) else {
            return (0, 0);
        };
        let s = self.start;
        if self.narrow {
            if let Some(w) = d.get_mut(s..s + 8).and_then(|w| w.first_chunk_mut::<8>()) {
                let v = u64::from_ne_bytes(*e.bytes.first_chunk::<8>().unwrap_or(&[0; 8]));
                *w = ((u64::from_ne_bytes(*w) & self.keep8) | v).to_ne_bytes();
            }
        } else if let Some(w) = d
            .get_mut(s..s + GROUP_SPAN)
            .and_then(|w| w.first_chunk_mut::<GROUP_SPAN>())
        {
            *w = ((u128::from_ne_bytes(*w) & self.keep) | u128::from_ne_bytes(e.bytes))
                .to_ne_bytes();
        }
        self.idx += 1;
        if self.idx == self.table.len() {
            self.idx = 0;
        }
        (e.ip, e.udp)
    }
}

impl FieldGroup {
    /// Plans the groups for `fields` (sorted by offset, greedily: a field
    /// joins the group before it while the window stays within 16 bytes and
    /// the combined period within `GROUP_MAX`). Only groups of two or more
    /// fields are made (one field is as cheap as a column); grouped fields
    /// get `grouped` set, and are left where they started.
    pub(super) fn plan(fields: &mut [FieldGen], rng: &mut Rng) -> Vec<FieldGroup> {
        let mut order: Vec<usize> = (0..fields.len())
            .filter(|&i| fields[i].cycle().is_some())
            .collect();
        order.sort_by_key(|&i| fields[i].offset);
        let mut groups = Vec::new();
        let mut cur: Vec<usize> = Vec::new();
        let mut period = 1u64;
        for i in order {
            let f = &fields[i];
            let cycle = f.cycle().unwrap_or(1);
            let joined = cur.first().and_then(|&g0| {
                let span = f.offset + f.width as usize - fields[g0].offset;
                let p = (period / gcd(period, cycle)).checked_mul(cycle)?;
                (span <= GROUP_SPAN && p <= GROUP_MAX).then_some(p)
            });
            match joined {
                Some(p) => period = p,
                None => {
                    groups.extend(Self::build(fields, &cur, period, rng));
                    cur.clear();
                    period = cycle;
                }
            }
            cur.push(i);
        }
        groups.extend(Self::build(fields, &cur, period, rng));
        groups
    }

    /// The group of fields `members` (two or more) and its table of `period` steps.
    fn build(
        fields: &mut [FieldGen],
        members: &[usize],
        period: u64,
        rng: &mut Rng,
    ) -> Option<FieldGroup> {
        if members.len() < 2 {
            return None;
        }
        let first = fields[members[0]].offset;
        let end = members
            .iter()
            .map(|&i| fields[i].offset + fields[i].width as usize)
            .max()?;
        let narrow = end - first <= 8;
        let width = if narrow { 8 } else { GROUP_SPAN };
        // The window stays inside the header view whatever the frame's layout.
        let start = first.min(HDR_VIEW - width);
        let mut mask = [0u8; GROUP_SPAN];
        for &i in members {
            let f = &fields[i];
            mask[f.offset - start..f.offset - start + f.width as usize].fill(0xff);
        }
        let mut scratch = [0u8; HDR_VIEW];
        let mut table = Vec::with_capacity(period as usize);
        for _ in 0..period {
            let (mut ip, mut udp) = (0u64, 0u64);
            for &i in members {
                let f = &mut fields[i];
                let w = f.write(&mut scratch);
                ip += w * f.in_ip;
                udp += w * (f.in_pseudo + f.in_l4);
                f.advance(rng);
            }
            let mut bytes = [0u8; GROUP_SPAN];
            bytes[..width].copy_from_slice(&scratch[start..start + width]);
            table.push(GroupEntry {
                bytes,
                ip: ip as u32,
                udp: udp as u32,
            });
        }
        for &i in members {
            fields[i].grouped = true;
        }
        Some(FieldGroup {
            start,
            narrow,
            keep: !u128::from_ne_bytes(mask),
            keep8: !u64::from_ne_bytes(mask[..8].try_into().unwrap_or([0; 8])),
            table,
            idx: 0,
        })
    }

    /// Writes the group's next values into each frame of a burst and adds
    /// their words to the frames' IPv4 (`ip`) and UDP (`udp`) sums.
    #[inline(always)]
    pub(super) fn column(
        &mut self,
        views: &mut [Option<&mut [u8; HDR_VIEW]>],
        ip: &mut [u32; FILL_MAX],
        udp: &mut [u32; FILL_MAX],
    ) {
        if self.narrow {
            self.column_w::<8>(views, ip, udp)
        } else {
            self.column_w::<GROUP_SPAN>(views, ip, udp)
        }
    }

    /// A cursor over the group's table for a burst (its state in
    /// registers, not re-read from the group after every frame write);
    /// [`FieldGroup::park`] stores where it stopped.
    #[inline(always)]
    pub(super) fn cursor(&self) -> GroupCursor<'_> {
        GroupCursor {
            table: &self.table,
            idx: self.idx % self.table.len().max(1),
            start: self.start,
            narrow: self.narrow,
            keep: self.keep,
            keep8: self.keep8,
        }
    }

    #[inline(always)]
    pub(super) fn park(&mut self, idx: usize) {
        self.idx = idx;
    }

    #[inline(always)]
    fn column_w<const G: usize>(
        &mut self,
        views: &mut [Option<&mut [u8; HDR_VIEW]>],
        ip: &mut [u32; FILL_MAX],
        udp: &mut [u32; FILL_MAX],
    ) {
        let s = self.start;
        let n = self.table.len();
        if s + G > HDR_VIEW || n == 0 || views.len() > FILL_MAX {
            return;
        }
        let (keep, keep8) = (self.keep, self.keep8);
        let mut idx = self.idx % n;
        let mut done = 0;
        // Runs up to the table's end: no wrap test and no bounds check per packet.
        while done < views.len() {
            let run = (views.len() - done).min(n - idx);
            let rows = views[done..done + run]
                .iter_mut()
                .zip(&self.table[idx..idx + run])
                .zip(
                    ip[done..done + run]
                        .iter_mut()
                        .zip(&mut udp[done..done + run]),
                );
            for ((d, e), (i, u)) in rows {
                let Some(d) = d else { continue };
                let w: &mut [u8; G] = match (&mut d[s..s + G]).try_into() {
                    Ok(w) => w,
                    Err(_) => continue,
                };
                if G == 8 {
                    let x = u64::from_ne_bytes(w[..8].try_into().unwrap_or([0; 8]));
                    let v = u64::from_ne_bytes(e.bytes[..8].try_into().unwrap_or([0; 8]));
                    w.copy_from_slice(&((x & keep8) | v).to_ne_bytes()[..G]);
                } else {
                    let x = u128::from_ne_bytes(w[..16].try_into().unwrap_or([0; 16]));
                    let v = u128::from_ne_bytes(e.bytes);
                    w.copy_from_slice(&((x & keep) | v).to_ne_bytes()[..G]);
                }
                *i += e.ip;
                *u += e.udp;
            }
            done += run;
            idx += run;
            if idx == n {
                idx = 0;
            }
        }
        self.idx = idx;
    }
}
