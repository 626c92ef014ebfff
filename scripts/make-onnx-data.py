#!/usr/bin/env python3
"""Make mixq's evaluation data for its ONNX models, byte for byte, from Debian packages.

Sources:
  - asterisk-core-sounds-en-wav: English prompts recorded by Allison Smith (CC-BY-SA-3.0),
    8 kHz 16-bit WAV;
  - asterisk-moh-opsound-wav: music on hold from opsound.org (CC-BY-SA-3.0), 8 kHz WAV;
  - fonts-dejavu-core: the DejaVu fonts (Bitstream Vera licence, public-domain changes),
    drawn with python3-pil;
  - examples/data/kjv-eval.txt: King James Bible verses (public domain), committed.

Outputs (in OUTDIR, default examples/onnx; formats in examples/onnx/README.md):
  vad-mix.wav, vad.txt       16 kHz speech (8 kHz prompts upsampled by a windowed-sinc
                             half-band filter), music, noise and silence, and the speech
                             segments (energy of each clean prompt, gaps under 300 ms
                             bridged): Silero VAD's data
  ocr-rec.tsv, rec/*.pgm     text lines 48 px high drawn in six DejaVu faces, with mild
                             noise: PP-OCRv4 recognition's data
  ocr-cls.tsv, cls/*.pgm     short, faint, noisy snippets, half of them turned 180 degrees:
                             the direction classifier's data

Everything random comes from a fixed-seed generator, so the files are identical on every
run with the same Debian packages. Usage:
  scripts/make-onnx-data.py [--out DIR] [--check]
--check regenerates into a temporary folder and compares with the committed files; it
exits 77 (skip) when a source package or python3-pil is missing. The script re-runs
itself under Debian's /usr/bin/python3 when the interpreter it was started with has no PIL.
"""
import argparse
import filecmp
import math
import os
import shutil
import struct
import sys
import tempfile
import wave

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SPEECH_DIR = "/usr/share/asterisk/sounds/en_US_f_Allison"
MOH_DIR = "/usr/share/asterisk/moh"
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"]
PROMPTS = ["hello-world", "all-circuits-busy-now", "conf-locked", "please-try-again", "one-moment-please",
           "call-forwarding", "queue-thankyou", "sorry-youre-having-problems", "agent-loginok", "telephone-number",
           "vm-incorrect", "do-not-disturb"]
MOH = ["macroform-cold_day", "reno_project-system", "manolo_camp-morning_coffee"]
SR = 16000
SKIP = False
CLS_CHARS, CLS_CONTRAST, CLS_NOISE = 9, (60, 50), 10.0  # short, faint, noisy: not saturated
REC_NOISE, REC_BLUR, REC_SIZE = 0.0, 1.4, 15  # no noise (the files stay small); small, half blurred


def die(msg, unavailable=False):
    sys.stderr.write("make-onnx-data: %s\n" % msg)
    sys.exit(77 if unavailable and SKIP else 1)


class Rng:
    """xorshift64*: the same numbers everywhere."""

    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFFFFFFFFFF

    def u64(self):
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & 0xFFFFFFFFFFFFFFFF
        s ^= s >> 27
        self.s = s
        return (s * 2685821657736338717) & 0xFFFFFFFFFFFFFFFF

    def uniform(self):  # [0, 1)
        return (self.u64() >> 11) / 9007199254740992.0

    def gauss(self):  # sum of 4 uniforms, scaled: cheap and exact everywhere
        return (sum(self.uniform() for _ in range(4)) - 2.0) * math.sqrt(3.0)


# ---- audio ------------------------------------------------------------------------------------

def read_wav8k(path):
    try:
        with wave.open(path, "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != 8000:
                die("'%s' is not 8 kHz 16-bit mono" % path)
            raw = w.readframes(w.getnframes())
    except (OSError, wave.Error) as e:
        die("cannot read '%s': %s (install asterisk-core-sounds-en-wav and asterisk-moh-opsound-wav)"
            % (path, e), unavailable=True)
    return [v / 32768.0 for v in struct.unpack("<%dh" % (len(raw) // 2), raw)]


# half-band interpolation filter: sinc at half-integer offsets, Blackman window, 16 taps a side
TAPS = 16
HB = []
for k in range(-TAPS, TAPS):
    t = k + 0.5
    win = 0.42 + 0.5 * math.cos(math.pi * t / TAPS) + 0.08 * math.cos(2 * math.pi * t / TAPS)
    HB.append(math.sin(math.pi * t) / (math.pi * t) * win)
HB_SUM = sum(HB)
HB = [h / HB_SUM for h in HB]


def upsample2(x):
    """8 kHz -> 16 kHz: even samples as they are, odd ones from the half-band filter."""
    n = len(x)
    out = [0.0] * (2 * n)
    for i in range(n):
        out[2 * i] = x[i]
        acc = 0.0
        for j, h in enumerate(HB):
            k = i + 1 + j - TAPS  # taps around the half-sample point between i and i+1
            if 0 <= k < n:
                acc += h * x[k]
        out[2 * i + 1] = acc
    return out


def speech_regions(x):
    """Speech inside a clean prompt: 10 ms windows within 35 dB of the loudest, gaps under
    300 ms bridged, 30 ms added on each side."""
    win = SR // 100
    energies = []
    for i in range(0, len(x) - win + 1, win):
        e = sum(v * v for v in x[i:i + win]) / win
        energies.append(e)
    if not energies:
        return []
    peak = max(energies)
    thresh = peak * 10 ** (-35 / 10)
    active = [e > thresh for e in energies]
    regions = []
    i = 0
    while i < len(active):
        if not active[i]:
            i += 1
            continue
        j = i
        while j < len(active) and active[j]:
            j += 1
        regions.append([i * win, j * win])
        i = j
    merged = []
    for r in regions:
        if merged and r[0] - merged[-1][1] < 0.3 * SR:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    pad = int(0.03 * SR)
    return [[max(0, a - pad), min(len(x), b + pad)] for a, b in merged]


def make_vad(out):
    rng = Rng(0x5eed0001)
    clips = [upsample2(read_wav8k(os.path.join(SPEECH_DIR, p + ".wav"))) for p in PROMPTS]
    music = []
    for i, name in enumerate(MOH):
        m = read_wav8k(os.path.join(MOH_DIR, name + ".wav"))
        start = 8000 * (20 + 7 * i)  # a few seconds in, past any fade-in
        music.append(upsample2(m[start:start + 8000 * 2]))
    mix = []
    speech = []

    def add(samples, gain=1.0, is_speech=False, clean=None):
        base = len(mix)
        mix.extend(v * gain for v in samples)
        if is_speech:
            for a, b in speech_regions(clean if clean is not None else samples):
                speech.append((base + a, base + b))

    def silence(sec):
        add([0.0] * int(sec * SR))

    def noise(sec, level):
        add([level * rng.gauss() for _ in range(int(sec * SR))])

    # a program of speech at several levels, music alone and under speech, noise, silence
    silence(0.6)
    for i, c in enumerate(clips):
        gain = [0.9, 0.5, 0.25, 0.12][i % 4] / max(1e-9, max(abs(v) for v in c))
        if i % 3 == 2:  # speech over music at -14 dB
            m = music[i % len(music)]
            bed = [m[k % len(m)] * 0.2 for k in range(len(c))]
            add([c[k] * gain + bed[k] for k in range(len(c))], is_speech=True, clean=c)
        else:
            add(c, gain, is_speech=True)
        if i % 4 == 0:
            add(music[(i // 4) % len(music)], 0.5)  # music alone: no speech
        elif i % 4 == 1:
            noise(0.8, 0.05)
        elif i % 4 == 2:
            silence(0.5)
        else:
            noise(0.4, 0.01)
            add(music[(i // 4 + 1) % len(music)][:SR], 0.3)
    silence(0.5)
    # a noise floor everywhere, then 16-bit samples
    pcm = []
    for v in mix:
        v += 0.002 * rng.gauss()
        pcm.append(max(-32768, min(32767, int(round(v * 32767.0)))))
    with wave.open(os.path.join(out, "vad-mix.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(struct.pack("<%dh" % len(pcm), *pcm))
    with open(os.path.join(out, "vad.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# mixq evaluation data for voice activity detection (made by scripts/make-onnx-data.py)\n")
        f.write("# %d samples at 16 kHz (%.1f s); speech START END in samples\n" % (len(pcm), len(pcm) / SR))
        f.write("mixq_data vad/1\n")
        f.write("audio vad-mix.wav\n")
        for a, b in speech:
            f.write("speech %d %d\n" % (a, b))


# ---- images -----------------------------------------------------------------------------------

def pil():
    try:
        from PIL import Image, ImageDraw, ImageFont, ImageFilter  # noqa: F401
    except ImportError:
        die("python3-pil is missing (Debian package python3-pil)", unavailable=True)
    import PIL
    return PIL


def write_pgm(path, img):
    w, h = img.size
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (w, h))
        f.write(img.tobytes())


def snippets(text, max_chars, min_chars, count, rng):
    """Word-aligned pieces of verses, max_chars at most, in text order, sampled evenly."""
    words = " ".join(line.strip() for line in text.splitlines() if line.strip()).split()
    pieces, cur = [], []
    for w in words:
        if len(" ".join(cur + [w])) > max_chars:
            if len(" ".join(cur)) >= min_chars:
                pieces.append(" ".join(cur))
            cur = []
        cur.append(w)
    step = max(1, len(pieces) // count)
    return [pieces[i * step] for i in range(count) if i * step < len(pieces)]


def render(text, font_path, size, fg, bg, rng, noise, height=48):
    """Text drawn on a line `height` px high (0: cropped to the text's ascent and descent
    plus a few pixels, as a detector's crop would be)."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.truetype(font_path, size)
    left, top, right, bottom = font.getbbox(text)
    ascent, descent = font.getmetrics()
    margin = 6 + int(rng.uniform() * 6)
    w = right - left + 2 * margin
    if height == 0:
        vpad = 2 + int(rng.uniform() * 4)
        height = ascent + descent + 2 * vpad
        y = vpad
    else:
        y = (height - (bottom - top)) // 2 - top
    img = Image.new("L", (w, height), bg)
    d = ImageDraw.Draw(img)
    d.text((margin - left, y), text, font=font, fill=fg)
    if noise > 0:
        px = img.load()
        for yy in range(height):
            for xx in range(w):
                v = px[xx, yy] + noise * rng.gauss()
                px[xx, yy] = max(0, min(255, int(round(v))))
    return img


def make_ocr(out):
    pil()
    from PIL import ImageFilter
    try:
        with open(os.path.join(ROOT, "examples", "data", "kjv-eval.txt"), encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        die("cannot read examples/data/kjv-eval.txt: %s" % e)
    for fnt in FONTS:
        if not os.path.exists(os.path.join(FONT_DIR, fnt)):
            die("font '%s' is missing (Debian package fonts-dejavu-core)" % fnt, unavailable=True)

    rng = Rng(0x5eed0002)
    os.makedirs(os.path.join(out, "rec"), exist_ok=True)
    lines = snippets(text, 24, 12, 40, rng)
    with open(os.path.join(out, "ocr-rec.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# mixq evaluation data for text recognition (made by scripts/make-onnx-data.py): FILE<tab>TEXT\n")
        for i, line in enumerate(lines):
            font = os.path.join(FONT_DIR, FONTS[i % len(FONTS)])
            size = REC_SIZE + (i * 5) % 8
            fg = int(30 + rng.uniform() * 90)
            bg = int(170 + rng.uniform() * 85)
            img = render(line, font, size, fg, bg, rng, noise=REC_NOISE)
            if i % 2:  # every other line out of focus, as a camera would take it
                img = img.filter(ImageFilter.GaussianBlur(REC_BLUR))
            if img.size[0] > 320:  # keep lines that fit the model's 320 columns unresized
                img = img.resize((320, 48))
            name = "rec/%03d.pgm" % i
            write_pgm(os.path.join(out, name), img)
            f.write("%s\t%s\n" % (name, line))

    rng = Rng(0x5eed0003)
    os.makedirs(os.path.join(out, "cls"), exist_ok=True)
    pieces = snippets(text, CLS_CHARS, 2, 64, rng)
    with open(os.path.join(out, "ocr-cls.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# mixq evaluation data for text direction (made by scripts/make-onnx-data.py): FILE<tab>ANGLE\n")
        for i, piece in enumerate(pieces):
            font = os.path.join(FONT_DIR, FONTS[(i * 7) % len(FONTS)])
            size = 22 + (i * 3) % 10
            bg = int(140 + rng.uniform() * 100)
            fg = bg - int(CLS_CONTRAST[0] + rng.uniform() * CLS_CONTRAST[1])  # faint
            img = render(piece, font, size, fg, bg, rng, noise=CLS_NOISE, height=0)
            angle = 180 if (i * 5 + 3) % 2 else 0
            if angle:
                img = img.rotate(180)
            name = "cls/%03d.pgm" % i
            write_pgm(os.path.join(out, name), img)
            f.write("%s\t%d\n" % (name, angle))


def generate(out):
    os.makedirs(out, exist_ok=True)
    make_vad(out)
    make_ocr(out)


OUTPUTS = ["vad-mix.wav", "vad.txt", "ocr-rec.tsv", "ocr-cls.tsv", "rec", "cls"]


def main():
    global SKIP
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "examples", "onnx"))
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    try:
        import PIL  # noqa: F401
    except ImportError:
        debian = "/usr/bin/python3"
        if os.path.exists(debian) and os.path.realpath(sys.executable) != os.path.realpath(debian) and \
                not os.environ.get("MIXQ_DATA_REEXEC"):
            os.environ["MIXQ_DATA_REEXEC"] = "1"
            os.execv(debian, [debian] + sys.argv)
    if not a.check:
        generate(a.out)
        return 0
    SKIP = True
    tmp = tempfile.mkdtemp(prefix="mixq-onnx-data-")
    try:
        generate(tmp)
        bad = []
        for name in OUTPUTS:
            mine, ref = os.path.join(tmp, name), os.path.join(a.out, name)
            if os.path.isdir(mine):
                files = sorted(set(os.listdir(mine)) | set(os.listdir(ref) if os.path.isdir(ref) else []))
                pairs = [(os.path.join(mine, f), os.path.join(ref, f)) for f in files]
            else:
                pairs = [(mine, ref)]
            for m, r in pairs:
                if not (os.path.exists(m) and os.path.exists(r) and filecmp.cmp(m, r, shallow=False)):
                    bad.append(os.path.relpath(r, ROOT))
        if bad:
            die("%d files differ from a fresh run: %s" % (len(bad), ", ".join(bad[:5])))
        print("make-onnx-data: %s regenerates byte for byte" % os.path.relpath(a.out, ROOT))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
