#include "core/nuscenes/splits.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd::core::nusc {
namespace {

// Scene numbers of the devkit's hard-coded lists (python-sdk/nuscenes/utils/splits.py, the
// version with train_detect/train_track); "scene-%04d". train is derived as in the devkit.
constexpr std::uint16_t kTrainDetect[] = {
    1, 2, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52,
    53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66,
    67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 161, 162, 163, 164,
    165, 166, 167, 168, 170, 171, 172, 173, 174, 175, 176, 190, 191, 192,
    193, 194, 195, 196, 199, 200, 202, 203, 204, 206, 207, 208, 209, 210,
    211, 212, 213, 214, 254, 255, 256, 257, 258, 259, 260, 261, 262, 263,
    264, 283, 284, 285, 286, 287, 288, 289, 290, 291, 292, 293, 294, 295,
    296, 297, 298, 299, 300, 301, 302, 303, 304, 305, 306, 315, 316, 317,
    318, 321, 323, 324, 347, 348, 349, 350, 351, 352, 353, 354, 355, 356,
    357, 358, 359, 360, 361, 362, 363, 364, 365, 366, 367, 368, 369, 370,
    371, 372, 373, 374, 375, 382, 420, 421, 422, 423, 424, 425, 426, 427,
    428, 429, 430, 431, 432, 433, 434, 435, 436, 437, 438, 439, 457, 458,
    459, 461, 462, 463, 464, 465, 467, 468, 469, 471, 472, 474, 475, 476,
    477, 478, 479, 480, 566, 568, 570, 571, 572, 573, 574, 575, 576, 577,
    578, 580, 582, 583, 665, 666, 667, 668, 669, 670, 671, 672, 673, 674,
    675, 676, 677, 678, 679, 681, 683, 684, 685, 686, 687, 688, 689, 739,
    740, 741, 744, 746, 747, 749, 750, 751, 752, 757, 758, 759, 760, 761,
    762, 763, 764, 765, 767, 768, 769, 868, 869, 870, 871, 872, 873, 875,
    876, 877, 878, 880, 882, 883, 884, 885, 886, 887, 888, 889, 890, 891,
    892, 893, 894, 895, 896, 897, 898, 899, 900, 901, 902, 903, 945, 947,
    949, 952, 953, 955, 956, 957, 958, 959, 960, 961, 975, 976, 977, 978,
    979, 980, 981, 982, 983, 984, 988, 989, 990, 991, 1011, 1012, 1013, 1014,
    1015, 1016, 1017, 1018, 1019, 1020, 1021, 1022, 1023, 1024, 1025, 1074, 1075, 1076,
    1077, 1078, 1079, 1080, 1081, 1082, 1083, 1084, 1085, 1086, 1087, 1088, 1089, 1090,
    1091, 1092, 1093, 1094, 1095, 1096, 1097, 1098, 1099, 1100, 1101, 1102, 1104, 1105,
};
constexpr std::uint16_t kTrainTrack[] = {
    4, 5, 6, 7, 8, 9, 10, 11, 19, 20, 21, 22, 23, 24,
    25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 120, 121, 122, 123,
    124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 138, 139,
    149, 150, 151, 152, 154, 155, 157, 158, 159, 160, 177, 178, 179, 180,
    181, 182, 183, 184, 185, 187, 188, 218, 219, 220, 222, 224, 225, 226,
    227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240,
    241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 328,
    376, 377, 378, 379, 380, 381, 383, 384, 385, 386, 388, 389, 390, 391,
    392, 393, 394, 395, 396, 397, 398, 399, 400, 401, 402, 403, 405, 406,
    407, 408, 410, 411, 412, 413, 414, 415, 416, 417, 418, 419, 440, 441,
    442, 443, 444, 445, 446, 447, 448, 449, 450, 451, 452, 453, 454, 455,
    456, 499, 500, 501, 502, 504, 505, 506, 507, 508, 509, 510, 511, 512,
    513, 514, 515, 517, 518, 525, 526, 527, 528, 529, 530, 531, 532, 533,
    534, 535, 536, 537, 538, 539, 541, 542, 543, 544, 545, 546, 584, 585,
    586, 587, 588, 589, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599,
    600, 639, 640, 641, 642, 643, 644, 645, 646, 647, 648, 649, 650, 651,
    652, 653, 654, 655, 656, 657, 658, 659, 660, 661, 662, 663, 664, 695,
    696, 697, 698, 700, 701, 703, 704, 705, 706, 707, 708, 709, 710, 711,
    712, 713, 714, 715, 716, 717, 718, 719, 726, 727, 728, 730, 731, 733,
    734, 735, 736, 737, 738, 786, 787, 789, 790, 791, 792, 803, 804, 805,
    806, 808, 809, 810, 811, 812, 813, 815, 816, 817, 819, 820, 821, 822,
    847, 848, 849, 850, 851, 852, 853, 854, 855, 856, 858, 860, 861, 862,
    863, 864, 865, 866, 992, 994, 995, 996, 997, 998, 999, 1000, 1001, 1002,
    1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1044, 1045, 1046, 1047, 1048, 1049,
    1050, 1051, 1052, 1053, 1054, 1055, 1056, 1057, 1058, 1106, 1107, 1108, 1109, 1110,
};
constexpr std::uint16_t kVal[] = {
    3, 12, 13, 14, 15, 16, 17, 18, 35, 36, 38, 39, 92, 93,
    94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107,
    108, 109, 110, 221, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277,
    278, 329, 330, 331, 332, 344, 345, 346, 519, 520, 521, 522, 523, 524,
    552, 553, 554, 555, 556, 557, 558, 559, 560, 561, 562, 563, 564, 565,
    625, 626, 627, 629, 630, 632, 633, 634, 635, 636, 637, 638, 770, 771,
    775, 777, 778, 780, 781, 782, 783, 784, 794, 795, 796, 797, 798, 799,
    800, 802, 904, 905, 906, 907, 908, 909, 910, 911, 912, 913, 914, 915,
    916, 917, 919, 920, 921, 922, 923, 924, 925, 926, 927, 928, 929, 930,
    931, 962, 963, 966, 967, 968, 969, 971, 972, 1059, 1060, 1061, 1062, 1063,
    1064, 1065, 1066, 1067, 1068, 1069, 1070, 1071, 1072, 1073,
};
constexpr std::uint16_t kTest[] = {
    77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90,
    91, 111, 112, 113, 114, 115, 116, 117, 118, 119, 140, 142, 143, 144,
    145, 146, 147, 148, 265, 266, 279, 280, 281, 282, 307, 308, 309, 310,
    311, 312, 313, 314, 333, 334, 335, 336, 337, 338, 339, 340, 341, 342,
    343, 481, 482, 483, 484, 485, 486, 487, 488, 489, 490, 491, 492, 493,
    494, 495, 496, 497, 498, 547, 548, 549, 550, 551, 601, 602, 603, 604,
    606, 607, 608, 609, 610, 611, 612, 613, 614, 615, 616, 617, 618, 619,
    620, 621, 622, 623, 624, 827, 828, 829, 830, 831, 833, 834, 835, 836,
    837, 838, 839, 840, 841, 842, 844, 845, 846, 932, 933, 935, 936, 937,
    938, 939, 940, 941, 942, 943, 1026, 1027, 1028, 1029, 1030, 1031, 1032, 1033,
    1034, 1035, 1036, 1037, 1038, 1039, 1040, 1041, 1042, 1043,
};
constexpr std::uint16_t kMiniTrain[] = {61, 553, 655, 757, 796, 1077, 1094, 1100};
constexpr std::uint16_t kMiniVal[] = {103, 916};

template <std::size_t N>
std::vector<std::string> names(const std::uint16_t (&numbers)[N]) {
  std::vector<std::string> out;
  out.reserve(N);
  char buf[16];
  for (std::uint16_t n : numbers) {
    std::snprintf(buf, sizeof buf, "scene-%04u", static_cast<unsigned>(n));
    out.emplace_back(buf);
  }
  return out;
}

const std::map<std::string, std::vector<std::string>>& splits() {
  static const std::map<std::string, std::vector<std::string>> kSplits = [] {
    std::map<std::string, std::vector<std::string>> m;
    m["train_detect"] = names(kTrainDetect);
    m["train_track"] = names(kTrainTrack);
    // train = list(sorted(set(train_detect + train_track)))
    std::set<std::string> train(m["train_detect"].begin(), m["train_detect"].end());
    train.insert(m["train_track"].begin(), m["train_track"].end());
    m["train"] = std::vector<std::string>(train.begin(), train.end());
    m["val"] = names(kVal);
    m["test"] = names(kTest);
    m["mini_train"] = names(kMiniTrain);
    m["mini_val"] = names(kMiniVal);
    return m;
  }();
  return kSplits;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

const std::vector<std::string>& predefined_split_names() {
  static const std::vector<std::string> kNames = {"train",    "val",          "test",       "mini_train",
                                                  "mini_val", "train_detect", "train_track"};
  return kNames;
}

bool is_predefined_split(const std::string& split) { return splits().count(split) > 0; }

const std::vector<std::string>& predefined_split_scenes(const std::string& split) {
  const auto it = splits().find(split);
  BEVKD_CHECK(it != splits().end(), "unknown predefined nuScenes split '", split,
              "' (expected train, val, test, mini_train, mini_val, train_detect or train_track)");
  return it->second;
}

void check_split_version(const std::string& split, const std::string& version) {
  std::string suffix;
  if (split == "train" || split == "val" || split == "train_detect" || split == "train_track") {
    suffix = "trainval";
  } else if (split == "mini_train" || split == "mini_val") {
    suffix = "mini";
  } else if (split == "test") {
    suffix = "test";
  } else {
    BEVKD_FAIL("'", split, "' is not a predefined nuScenes split");
  }
  BEVKD_CHECK(ends_with(version, suffix), "split ", split, " needs a nuScenes version ending in '", suffix,
              "', found ", version);
}

std::vector<std::string> split_scene_names(const std::string& split, const std::string& dataroot,
                                           const std::string& version) {
  if (is_predefined_split(split)) {
    check_split_version(split, version);
    return predefined_split_scenes(split);
  }
  const std::string path = dataroot + "/" + version + "/splits.json";
  BEVKD_CHECK(path_exists(path), "custom split '", split, "' requested, but ", path,
              " does not exist (predefined splits: train, val, test, mini_train, mini_val, train_detect, "
              "train_track)");
  simdjson::padded_string json;
  BEVKD_CHECK(simdjson::padded_string::load(path).get(json) == simdjson::SUCCESS, "cannot read ", path);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  BEVKD_CHECK(parser.iterate(json).get(doc) == simdjson::SUCCESS && doc.get_object().get(obj) == simdjson::SUCCESS,
              path, ": expected a JSON object {\"split_name\": [\"scene-xxxx\", ...]}");
  std::vector<std::string> out;
  bool found = false;
  for (auto field : obj) {
    std::string_view key;
    BEVKD_CHECK(field.unescaped_key().get(key) == simdjson::SUCCESS, path, ": malformed JSON");
    if (key != split) continue;
    found = true;
    simdjson::ondemand::array arr;
    BEVKD_CHECK(field.value().get_array().get(arr) == simdjson::SUCCESS, path, ": custom split '", split,
                "' must be a list of scene names");
    for (auto elem : arr) {
      std::string_view name;
      BEVKD_CHECK(elem.get_string().get(name) == simdjson::SUCCESS, path, ": custom split '", split,
                  "' must be a list of scene names (strings)");
      out.emplace_back(name);
    }
    break;
  }
  BEVKD_CHECK(found, "custom split '", split, "' requested, but not found in ", path);
  return out;
}

}  // namespace bevkd::core::nusc
