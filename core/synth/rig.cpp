#include "core/synth/rig.h"

#include <cmath>

namespace bevkd::core::synth {
namespace {

Quat yaw_quat(double deg) { return Quat::from_yaw(deg * 3.14159265358979323846 / 180.0); }

}  // namespace

const std::array<SensorSpec, kNumSensors>& sensor_specs() {
  // LIDAR_TOP: x to the vehicle's right, y forward (a ~-90 deg yaw with a slight tilt), as the
  // real rig. Cameras: OpenCV frames (x right, y down, z forward); CAM_BACK has the wider lens.
  static const std::array<SensorSpec, kNumSensors> kSpecs = {{
      {"LIDAR_TOP", "lidar", {0.943713, 0.0, 1.84023}, {0.7077955119163518, -0.006492242056004365, 0.010646214713995808, -0.7063073142877817}, 0, 0, 0, 0.0},
      {"CAM_FRONT", "camera", {1.70079118954, 0.0159456324149, 1.51095763913}, {0.4998015430569128, -0.5030316162024876, 0.4997798114386805, -0.49737083824542755}, 1266.417203046554, 816.2670197447984, 491.50706579294757, -0.035},
      {"CAM_FRONT_RIGHT", "camera", {1.5508477543, -0.493404796419, 1.49574800619}, {0.2060347966337182, -0.2026940577919598, 0.6824507824531167, -0.6713610884174485}, 1260.8474446004698, 807.968244525554, 495.3344268742088, -0.027},
      {"CAM_FRONT_LEFT", "camera", {1.52387798135, 0.494631336551, 1.50932822144}, {0.6757265034669446, -0.6736266522251881, 0.21214015046209478, -0.21122827103904068}, 1272.5979470598488, 826.6154927353808, 479.75165386361925, -0.043},
      {"CAM_BACK", "camera", {0.0283260309358, 0.00345136761476, 1.57910346144}, {0.5037872666382278, -0.49740249788611096, -0.4941850223835201, 0.5045496097725578}, 809.2209905677063, 829.2196003259838, 481.77842384512485, -0.010},
      {"CAM_BACK_LEFT", "camera", {1.03569100218, 0.484795032713, 1.59097014818}, {0.6924185592174665, -0.7031619420114925, -0.11648342771943819, 0.11203317912370753}, 1256.7414812095406, 792.1125740759628, 492.7757465151356, -0.002},
      {"CAM_BACK_RIGHT", "camera", {1.0148780988, -0.480568219723, 1.56239545128}, {0.12280980120078765, -0.132400842670559, -0.7004305821388234, 0.690496031265798}, 1259.5137405846733, 807.2529149082172, 501.19579884916527, -0.018},
      {"RADAR_FRONT", "radar", {3.412, 0.0, 0.5}, yaw_quat(0.0), 0, 0, 0, -0.012},
      {"RADAR_FRONT_LEFT", "radar", {2.422, 0.8, 0.78}, yaw_quat(89.6), 0, 0, 0, -0.020},
      {"RADAR_FRONT_RIGHT", "radar", {2.409, -0.766, 0.797}, yaw_quat(-90.3), 0, 0, 0, -0.029},
      {"RADAR_BACK_LEFT", "radar", {-0.562, 0.628, 0.534}, yaw_quat(177.4), 0, 0, 0, -0.008},
      {"RADAR_BACK_RIGHT", "radar", {-0.567, -0.628, 0.538}, yaw_quat(-178.8), 0, 0, 0, -0.016},
  }};
  return kSpecs;
}

Calibration calibrate(int k, Rng& rng, int width, int height) {
  const SensorSpec& s = sensor_specs()[k];
  Calibration c;
  c.translation = {s.translation[0] + rng.normal(0, 0.003), s.translation[1] + rng.normal(0, 0.003),
                   s.translation[2] + rng.normal(0, 0.003)};
  const Quat wobble = Quat::from_axis_angle({rng.normal(0, 1), rng.normal(0, 1), rng.normal(0, 1) + 1e-9},
                                            rng.normal(0, 0.002));
  c.rotation = (wobble * s.rotation).normalized();
  if (c.rotation.w < 0) c.rotation = {-c.rotation.w, -c.rotation.x, -c.rotation.y, -c.rotation.z};
  c.sensor_to_ego = Rigid::from_pose(c.translation, c.rotation);
  c.camera = s.modality == "camera";
  if (c.camera) {
    const double sx = width / 1600.0, sy = height / 900.0;
    const double f = s.f * (1.0 + rng.normal(0, 0.002));
    c.K = {f * sx, 0.0, s.cx * sx, 0.0, f * sy, s.cy * sy, 0.0, 0.0, 1.0};
  }
  return c;
}

}  // namespace bevkd::core::synth
