#!/usr/bin/env python3
"""Checks that a dataset is in the exact nuScenes v1.0 format of spec/nuscenes.md, independently of
bevkd's C++ reader (standard library + numpy only; the devkit itself is not installable here).

Usage: check_nuscenes_format.py <dataroot> <version>
       check_nuscenes_format.py <dataroot> <version> --self-test
         (checks the dataset, then proves that corrupted copies of its tables are caught)

What it checks, mirroring what the devkit's NuScenes class and readers do:
  * all 13 tables exist, are JSON arrays, and every record carries every field of spec (a) with
    the right JSON type (str / int / float / bool / list), tokens unique;
  * the devkit's reverse index works: category_name via instance, channel/modality via
    calibrated_sensor -> sensor, sample.data for key frames, sample.anns, log -> map (every log in
    some map's log_tokens), map PNGs exist;
  * chains: sample prev/next per scene, sample_data prev/next per (scene, channel) in time order
    with the first key frame's prev == "", annotation prev/next per instance over consecutive
    samples, instance nbr/first/last, scene nbr/first/last;
  * files: key frames under samples/, sweeps under sweeps/, names
    <dir>/<CHANNEL>/<logfile>__<CHANNEL>__<timestamp>.<ext>, every file present; .pcd.bin sizes a
    multiple of 20; radar .pcd parsed exactly like the devkit's RadarPointCloud.from_file (fixed
    header positions, a byte after the last point); JPEG headers give sample_data.width/height;
  * the mini scene names are the real ones when the version ends in "mini".
Prints "OK <summary>" and exits 0, or prints every problem found and exits 1.
"""
import json
import os
import re
import struct
import sys

import numpy as np

STR, INT, FLOAT, BOOL, LIST = "str", "int", "float", "bool", "list"

# spec/nuscenes.md (a): table -> field -> type ("index" of category is lidarseg-only but the
# generator writes it, so it is checked too).
SCHEMA = {
    "category": {"token": STR, "name": STR, "description": STR, "index": INT},
    "attribute": {"token": STR, "name": STR, "description": STR},
    "visibility": {"token": STR, "level": STR, "description": STR},
    "instance": {"token": STR, "category_token": STR, "nbr_annotations": INT,
                 "first_annotation_token": STR, "last_annotation_token": STR},
    "sensor": {"token": STR, "channel": STR, "modality": STR},
    "calibrated_sensor": {"token": STR, "sensor_token": STR, "translation": (LIST, FLOAT, 3),
                          "rotation": (LIST, FLOAT, 4), "camera_intrinsic": LIST},
    "ego_pose": {"token": STR, "timestamp": INT, "translation": (LIST, FLOAT, 3), "rotation": (LIST, FLOAT, 4)},
    "log": {"token": STR, "logfile": STR, "vehicle": STR, "date_captured": STR, "location": STR},
    "map": {"token": STR, "log_tokens": (LIST, STR, None), "category": STR, "filename": STR},
    "scene": {"token": STR, "name": STR, "description": STR, "log_token": STR, "nbr_samples": INT,
              "first_sample_token": STR, "last_sample_token": STR},
    "sample": {"token": STR, "timestamp": INT, "scene_token": STR, "prev": STR, "next": STR},
    "sample_data": {"token": STR, "sample_token": STR, "ego_pose_token": STR, "calibrated_sensor_token": STR,
                    "timestamp": INT, "fileformat": STR, "is_key_frame": BOOL, "width": INT, "height": INT,
                    "filename": STR, "prev": STR, "next": STR},
    "sample_annotation": {"token": STR, "sample_token": STR, "instance_token": STR,
                          "attribute_tokens": (LIST, STR, None), "visibility_token": STR,
                          "translation": (LIST, FLOAT, 3), "size": (LIST, FLOAT, 3), "rotation": (LIST, FLOAT, 4),
                          "num_lidar_pts": INT, "num_radar_pts": INT, "prev": STR, "next": STR},
}
CAMERAS = ["CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT"]
RADARS = ["RADAR_FRONT", "RADAR_FRONT_LEFT", "RADAR_FRONT_RIGHT", "RADAR_BACK_LEFT", "RADAR_BACK_RIGHT"]
MINI_TRAIN = ["scene-0061", "scene-0553", "scene-0655", "scene-0757", "scene-0796", "scene-1077", "scene-1094",
              "scene-1100"]
MINI_VAL = ["scene-0103", "scene-0916"]


def type_ok(value, kind):
    if kind == STR:
        return isinstance(value, str)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == FLOAT:
        return isinstance(value, float)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == LIST:
        return isinstance(value, list)
    raise ValueError(kind)


class Checker:
    def __init__(self, root, version):
        self.root, self.version = root, version
        self.problems = []

    def fail(self, msg):
        if len(self.problems) < 50:
            self.problems.append(msg)

    def load(self):
        t = {}
        for table in SCHEMA:
            path = os.path.join(self.root, self.version, table + ".json")
            if not os.path.exists(path):
                self.fail("missing table " + path)
                continue
            with open(path) as f:
                records = json.load(f)
            if not isinstance(records, list):
                self.fail(table + ".json is not a JSON array")
                continue
            for i, r in enumerate(records):
                for field, kind in SCHEMA[table].items():
                    if field not in r:
                        self.fail("%s record %d: missing field %s" % (table, i, field))
                        continue
                    v = r[field]
                    if isinstance(kind, tuple):
                        _, inner, n = kind
                        if not isinstance(v, list) or (n is not None and len(v) != n) or \
                                not all(type_ok(x, inner) for x in v):
                            self.fail("%s record %d: field %s must be a list of %s%s, found %r" %
                                      (table, i, field, n if n else "", inner, v))
                    elif not type_ok(v, kind):
                        self.fail("%s record %d: field %s must be %s, found %r" % (table, i, field, kind, v))
                if not re.fullmatch(r"[0-9a-f]{32}", r.get("token", "")) and table != "visibility":
                    self.fail("%s record %d: token %r is not 32 hex digits" % (table, i, r.get("token")))
            tokens = [r["token"] for r in records]
            if len(set(tokens)) != len(tokens):
                self.fail(table + ": duplicate tokens")
            t[table] = records
        return t

    def run(self):
        t = self.load()
        if self.problems:
            return
        idx = {name: {r["token"]: r for r in recs} for name, recs in t.items()}

        def get(table, token, where):
            r = idx[table].get(token)
            if r is None:
                self.fail("%s refers to %s token %r which does not exist" % (where, table, token))
            return r

        # Devkit reverse index.
        for ann in t["sample_annotation"]:
            inst = get("instance", ann["instance_token"], "annotation " + ann["token"])
            if inst:
                get("category", inst["category_token"], "instance " + inst["token"])
            get("sample", ann["sample_token"], "annotation " + ann["token"])
            get("visibility", ann["visibility_token"], "annotation " + ann["token"])
            for a in ann["attribute_tokens"]:
                get("attribute", a, "annotation " + ann["token"])
            if len(ann["attribute_tokens"]) > 1:
                self.fail("annotation %s has %d attributes" % (ann["token"], len(ann["attribute_tokens"])))
            if min(ann["size"]) <= 0:
                self.fail("annotation %s has size %r" % (ann["token"], ann["size"]))
        channel_of = {}
        for sd in t["sample_data"]:
            cs = get("calibrated_sensor", sd["calibrated_sensor_token"], "sample_data " + sd["token"])
            sensor = get("sensor", cs["sensor_token"], "calibrated_sensor " + cs["token"]) if cs else None
            if sensor:
                channel_of[sd["token"]] = (sensor["channel"], sensor["modality"])
            if sd["ego_pose_token"] != sd["token"] or sd["ego_pose_token"] not in idx["ego_pose"]:
                self.fail("sample_data %s: ego_pose_token %s" % (sd["token"], sd["ego_pose_token"]))
            get("sample", sd["sample_token"], "sample_data " + sd["token"])
        channels = sorted(s["channel"] for s in t["sensor"])
        if channels != sorted(["LIDAR_TOP"] + CAMERAS + RADARS):
            self.fail("sensor channels %r" % channels)
        for cs in t["calibrated_sensor"]:
            modality = idx["sensor"][cs["sensor_token"]]["modality"]
            k = cs["camera_intrinsic"]
            if modality == "camera":
                if len(k) != 3 or any(len(row) != 3 or not all(isinstance(x, float) for x in row) for row in k):
                    self.fail("calibrated_sensor %s: camera_intrinsic %r" % (cs["token"], k))
            elif k != []:
                self.fail("calibrated_sensor %s: %s sensor with intrinsic %r" % (cs["token"], modality, k))
        log_to_map = {}
        for m in t["map"]:
            for lt in m["log_tokens"]:
                log_to_map[lt] = m["token"]
            if not os.path.exists(os.path.join(self.root, m["filename"])):
                self.fail("map file %s is missing" % m["filename"])
            if m["category"] != "semantic_prior":
                self.fail("map %s category %r" % (m["token"], m["category"]))
        for log in t["log"]:
            if log["token"] not in log_to_map:
                self.fail("log %s is in no map's log_tokens (the devkit raises KeyError)" % log["token"])
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", log["date_captured"]):
                self.fail("log %s date_captured %r" % (log["token"], log["date_captured"]))

        # Scenes and samples.
        samples_of_scene = {}
        for s in t["sample"]:
            get("scene", s["scene_token"], "sample " + s["token"])
            samples_of_scene.setdefault(s["scene_token"], []).append(s)
        for sc in t["scene"]:
            chain, tok = [], sc["first_sample_token"]
            while tok:
                s = idx["sample"][tok]
                chain.append(s)
                if s["next"] and idx["sample"][s["next"]]["prev"] != tok:
                    self.fail("sample %s: next/prev mismatch" % tok)
                tok = s["next"]
            if chain[0]["prev"] != "" or chain[-1]["token"] != sc["last_sample_token"] or \
                    len(chain) != sc["nbr_samples"] or len(chain) != len(samples_of_scene.get(sc["token"], [])):
                self.fail("scene %s: sample chain inconsistent" % sc["name"])
            ts = [s["timestamp"] for s in chain]
            if any(b - a < 400000 or b - a > 600000 for a, b in zip(ts, ts[1:])):
                self.fail("scene %s: samples are not at 2 Hz: %r" % (sc["name"], ts))
            get("log", sc["log_token"], "scene " + sc["name"])
        names = [sc["name"] for sc in t["scene"]]
        if self.version.endswith("mini"):
            want = [n for n in MINI_TRAIN + MINI_VAL][:len(names)]
            if not set(names[:10]) <= set(MINI_TRAIN + MINI_VAL):
                self.fail("scene names %r are not the real mini names %r" % (names, want))

        # sample.data: every sample has a key frame of every channel; chains per sensor.
        key = {}
        chains = {}
        sample_scene = {s["token"]: s["scene_token"] for s in t["sample"]}
        for sd in t["sample_data"]:
            ch, modality = channel_of[sd["token"]]
            if sd["is_key_frame"]:
                key[(sd["sample_token"], ch)] = sd
            chains.setdefault((sample_scene[sd["sample_token"]], ch), []).append(sd)
            log = idx["log"][idx["scene"][sample_scene[sd["sample_token"]]]["log_token"]]
            ext = {"lidar": "pcd.bin", "camera": "jpg", "radar": "pcd"}[modality]
            want = "%s/%s/%s__%s__%d.%s" % ("samples" if sd["is_key_frame"] else "sweeps", ch, log["logfile"], ch,
                                           sd["timestamp"], ext)
            if sd["filename"] != want:
                self.fail("sample_data %s: filename %s, expected %s" % (sd["token"], sd["filename"], want))
            if sd["fileformat"] != ("jpg" if modality == "camera" else "pcd"):
                self.fail("sample_data %s: fileformat %s" % (sd["token"], sd["fileformat"]))
            if modality != "camera" and (sd["width"] != 0 or sd["height"] != 0):
                self.fail("sample_data %s: %s with image size" % (sd["token"], modality))
            if idx["ego_pose"][sd["ego_pose_token"]]["timestamp"] != sd["timestamp"]:
                self.fail("sample_data %s: ego pose timestamp differs" % sd["token"])
        for s in t["sample"]:
            for ch in ["LIDAR_TOP"] + CAMERAS + RADARS:
                if (s["token"], ch) not in key:
                    self.fail("sample %s has no %s key frame" % (s["token"], ch))
            lidar = key.get((s["token"], "LIDAR_TOP"))
            if lidar and lidar["timestamp"] != s["timestamp"]:
                self.fail("sample %s: timestamp %d is not its LIDAR_TOP key frame's %d" %
                          (s["token"], s["timestamp"], lidar["timestamp"]))
        for (scene, ch), sds in chains.items():
            by_token = {sd["token"]: sd for sd in sds}
            firsts = [sd for sd in sds if sd["prev"] == ""]
            if len(firsts) != 1 or not firsts[0]["is_key_frame"]:
                self.fail("scene %s %s: the chain must start at a key frame with prev \"\"" % (scene, ch))
                continue
            chain, sd = [], firsts[0]
            while True:
                chain.append(sd)
                if not sd["next"]:
                    break
                nxt = by_token.get(sd["next"])
                if nxt is None or nxt["prev"] != sd["token"]:
                    self.fail("sample_data %s: next/prev mismatch" % sd["token"])
                    break
                sd = nxt
            if len(chain) != len(sds):
                self.fail("scene %s %s: chain covers %d of %d frames" % (scene, ch, len(chain), len(sds)))
            ts = [x["timestamp"] for x in chain]
            if ts != sorted(ts):
                self.fail("scene %s %s: timestamps not increasing" % (scene, ch))
            for x in chain:  # sweeps belong to the following key frame
                if not x["is_key_frame"]:
                    s = idx["sample"][x["sample_token"]]
                    if not (idx["sample"][s["prev"]]["timestamp"] - 60000 < x["timestamp"] < s["timestamp"] + 60000):
                        self.fail("sweep %s is not between its sample's previous and own key frame" % x["token"])

        # Annotations: chains per instance over consecutive samples.
        for inst in t["instance"]:
            chain, tok = [], inst["first_annotation_token"]
            while tok:
                a = idx["sample_annotation"].get(tok)
                if a is None:
                    self.fail("instance %s: broken annotation chain" % inst["token"])
                    break
                chain.append(a)
                if a["instance_token"] != inst["token"]:
                    self.fail("annotation %s in the chain of another instance" % tok)
                if a["next"]:
                    n = idx["sample_annotation"][a["next"]]
                    if n["prev"] != tok or idx["sample"][n["sample_token"]]["timestamp"] <= \
                            idx["sample"][a["sample_token"]]["timestamp"]:
                        self.fail("annotation %s: next/prev mismatch" % tok)
                tok = a["next"]
            if len(chain) != inst["nbr_annotations"] or chain[-1]["token"] != inst["last_annotation_token"]:
                self.fail("instance %s: nbr/first/last inconsistent" % inst["token"])

        self.check_files(t, channel_of)
        self.summary = "%d scenes, %d samples, %d sample_data, %d annotations, %d instances" % (
            len(t["scene"]), len(t["sample"]), len(t["sample_data"]), len(t["sample_annotation"]), len(t["instance"]))

    def check_files(self, t, channel_of):
        for sd in t["sample_data"]:
            path = os.path.join(self.root, sd["filename"])
            if not os.path.exists(path):
                self.fail("missing file " + path)
                continue
            modality = channel_of[sd["token"]][1]
            if modality == "lidar":
                size = os.path.getsize(path)
                if size % 20:
                    self.fail("%s: %d bytes is not a multiple of 20" % (path, size))
                    continue
                pts = np.fromfile(path, dtype=np.float32).reshape(-1, 5)
                if len(pts) and (pts[:, 3].min() < 0 or pts[:, 3].max() > 255 or pts[:, 4].min() < 0 or
                                 not np.all(pts[:, 4] == np.round(pts[:, 4])) or not np.isfinite(pts).all()):
                    self.fail("%s: intensity/ring out of range" % path)
            elif modality == "radar":
                try:
                    devkit_radar_from_file(path)
                except Exception as e:  # noqa: BLE001 - report anything the devkit's reader would raise
                    self.fail("%s: the devkit's radar reader fails: %r" % (path, e))
            else:
                w, h = jpeg_size(path)
                if (w, h) != (sd["width"], sd["height"]):
                    self.fail("%s: JPEG is %dx%d, sample_data says %dx%d" % (path, w, h, sd["width"], sd["height"]))


def devkit_radar_from_file(file_name):
    """RadarPointCloud.from_file of the devkit (d9de17a), default filters; returns (18, N)."""
    meta = []
    with open(file_name, "rb") as f:
        for line in f:
            line = line.strip().decode("utf-8")
            meta.append(line)
            if line.startswith("DATA"):
                break
        data_binary = f.read()
    assert meta[0].startswith("#"), "First line must be comment"
    assert meta[1].startswith("VERSION"), "Second line must be VERSION"
    sizes = meta[3].split(" ")[1:]
    types = meta[4].split(" ")[1:]
    counts = meta[5].split(" ")[1:]
    width = int(meta[6].split(" ")[1])
    height = int(meta[7].split(" ")[1])
    data = meta[10].split(" ")[1]
    feature_count = len(types)
    assert width > 0
    assert len([c for c in counts if c != c]) == 0, "Error: COUNT not supported!"
    assert height == 1, "Error: height != 0 not supported!"
    assert data == "binary"
    unpacking_lut = {"F": {2: "e", 4: "f", 8: "d"}, "I": {1: "b", 2: "h", 4: "i", 8: "q"},
                     "U": {1: "B", 2: "H", 4: "I", 8: "Q"}}
    types_str = "".join([unpacking_lut[t][int(s)] for t, s in zip(types, sizes)])
    offset = 0
    points = []
    for _ in range(width):
        point = []
        for p in range(feature_count):
            start_p = offset
            end_p = start_p + int(sizes[p])
            assert end_p < len(data_binary)
            point.append(struct.unpack(types_str[p], data_binary[start_p:end_p])[0])
            offset = end_p
        points.append(point)
    point = np.array(points[0])
    if np.any(np.isnan(point)):
        return np.zeros((feature_count, 0))
    points = np.array(points).transpose()
    valid = [p in [0] for p in points[-4, :]]
    points = points[:, valid]
    valid = [p in range(7) for p in points[3, :]]
    points = points[:, valid]
    valid = [p in [3] for p in points[11, :]]
    return points[:, valid]


def jpeg_size(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    raise ValueError("no SOF marker")


def self_test(root, version):
    """Each mutation of a valid dataset's tables must be reported."""
    import shutil
    import tempfile

    def first(records, pred=lambda r: True):
        return next(r for r in records if pred(r))

    mutations = {
        "float field written as int": ("sample_annotation", lambda t: first(t).__setitem__("translation", [1, 2, 3])),
        "missing field": ("sample_data", lambda t: first(t).pop("is_key_frame")),
        "dangling token": ("sample_annotation", lambda t: first(t).__setitem__("instance_token", "0" * 32)),
        "wrong file name": ("sample_data", lambda t: first(t).__setitem__("filename", "samples/x.jpg")),
        "broken chain": ("sample", lambda t: first(t).__setitem__("prev", t[-1]["token"])),
        "key frame under sweeps": ("sample_data", lambda t: first(t, lambda r: not r["is_key_frame"])
                                   .__setitem__("is_key_frame", True)),
        "bool as int": ("sample_data", lambda t: first(t).__setitem__("is_key_frame", 1)),
    }
    failures = []
    for name, (table, mutate) in mutations.items():
        tmp = tempfile.mkdtemp(prefix="nusc_selftest_")
        try:
            for d in ("samples", "sweeps", "maps"):
                if os.path.exists(os.path.join(root, d)):
                    os.symlink(os.path.abspath(os.path.join(root, d)), os.path.join(tmp, d))
            shutil.copytree(os.path.join(root, version), os.path.join(tmp, version))
            path = os.path.join(tmp, version, table + ".json")
            with open(path) as f:
                records = json.load(f)
            mutate(records)
            with open(path, "w") as f:
                json.dump(records, f)
            c = Checker(tmp, version)
            c.run()
            if not c.problems:
                failures.append(name)
        finally:
            shutil.rmtree(tmp)
    if failures:
        print("SELF-TEST FAILED: not caught: " + ", ".join(failures))
        return 1
    print("self-test OK: %d corruptions caught" % len(mutations))
    return 0


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    c = Checker(sys.argv[1], sys.argv[2])
    c.run()
    if c.problems:
        print("FORMAT PROBLEMS (%d shown):" % len(c.problems))
        for p in c.problems:
            print("  " + p)
        return 1
    print("OK " + c.summary)
    if "--self-test" in sys.argv[3:]:
        return self_test(sys.argv[1], sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
