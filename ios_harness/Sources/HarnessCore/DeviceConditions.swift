import Foundation

/// The conditions that throttle a device, read before and after each model's timed runs.
public struct DeviceConditions: Codable, Equatable, Sendable {
    /// `ProcessInfo.thermalState`; `unknown` where the platform does not report it.
    public var thermalState: ThermalState
    /// `ProcessInfo.isLowPowerModeEnabled`; nil where the platform does not report it.
    public var lowPowerMode: Bool?

    public init(thermalState: ThermalState, lowPowerMode: Bool?) {
        self.thermalState = thermalState
        self.lowPowerMode = lowPowerMode
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case thermalState = "thermal_state"
        case lowPowerMode = "low_power_mode"
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        thermalState = try container.decode(ThermalState.self, forKey: .thermalState)
        lowPowerMode = try container.decodeNullable(Bool.self, forKey: .lowPowerMode)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(thermalState, forKey: .thermalState)
        try container.encodeOrNull(lowPowerMode, forKey: .lowPowerMode)
    }

    /// The conditions now (``DeviceInfo`` reads the same two values once per session).
    public static func current(processInfo: ProcessInfo = .processInfo) -> DeviceConditions {
        DeviceConditions(
            thermalState: DeviceInfo.thermalState(of: processInfo),
            lowPowerMode: DeviceInfo.lowPowerMode(of: processInfo)
        )
    }

    /// Whether the device may have throttled: a thermal state above nominal or Low Power Mode on.
    public var mayThrottle: Bool {
        thermalState == .fair || thermalState == .serious || thermalState == .critical || lowPowerMode == true
    }

    /// `thermal state nominal, low power mode off`.
    public var summaryText: String {
        let lowPower = lowPowerMode.map { $0 ? "on" : "off" } ?? "unknown"
        return "thermal state \(thermalState.rawValue), low power mode \(lowPower)"
    }
}
