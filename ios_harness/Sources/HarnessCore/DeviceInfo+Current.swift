import Foundation
#if canImport(Darwin)
import Darwin
#endif

extension DeviceInfo {
    /// The machine this process runs on.
    ///
    /// - `model_identifier`: `utsname.machine` on iOS devices (`iPhone13,2`), `sysctl hw.model`
    ///   on macOS (`Mac14,2`), `simulator:<SIMULATOR_MODEL_IDENTIFIER>` in the iOS Simulator,
    ///   `unknown` elsewhere (Linux).
    /// - Thermal state and Low Power Mode come from `ProcessInfo` on Apple platforms; elsewhere
    ///   they are `unknown` and nil.
    public static func current(processInfo: ProcessInfo = .processInfo) -> DeviceInfo {
        let version = processInfo.operatingSystemVersion
        return DeviceInfo(
            modelIdentifier: Self.hardwareModelIdentifier(environment: processInfo.environment),
            osName: Self.operatingSystemName,
            osVersion: "\(version.majorVersion).\(version.minorVersion).\(version.patchVersion)",
            thermalState: Self.thermalState(of: processInfo),
            lowPowerMode: Self.lowPowerMode(of: processInfo),
            processorCount: processInfo.processorCount,
            physicalMemoryBytes: processInfo.physicalMemory
        )
    }

    /// `iOS`, `macOS`, `Linux` or `unknown`.
    static var operatingSystemName: String {
        #if os(iOS)
        return "iOS"
        #elseif os(macOS)
        return "macOS"
        #elseif os(Linux)
        return "Linux"
        #else
        return "unknown"
        #endif
    }

    static func thermalState(of processInfo: ProcessInfo) -> ThermalState {
        #if canImport(Darwin)
        switch processInfo.thermalState {
        case .nominal: return .nominal
        case .fair: return .fair
        case .serious: return .serious
        case .critical: return .critical
        @unknown default: return .unknown
        }
        #else
        return .unknown
        #endif
    }

    static func lowPowerMode(of processInfo: ProcessInfo) -> Bool? {
        #if os(iOS) || os(macOS)
        return processInfo.isLowPowerModeEnabled
        #else
        return nil
        #endif
    }

    static func hardwareModelIdentifier(environment: [String: String]) -> String {
        #if targetEnvironment(simulator)
        let simulated = environment["SIMULATOR_MODEL_IDENTIFIER"] ?? ""
        return "simulator:" + (simulated.isEmpty ? "unknown" : simulated)
        #elseif os(macOS)
        return sysctlString("hw.model") ?? unameMachine() ?? "unknown"
        #elseif canImport(Darwin)
        return unameMachine() ?? "unknown"
        #else
        return "unknown"
        #endif
    }

    #if canImport(Darwin)
    /// `utsname.machine`, e.g. `iPhone13,2` on an iPhone 12.
    private static func unameMachine() -> String? {
        var info = utsname()
        guard uname(&info) == 0 else { return nil }
        let machine = withUnsafeBytes(of: &info.machine) { raw -> String in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return machine.isEmpty ? nil : machine
    }

    /// A string sysctl value such as `hw.model`.
    private static func sysctlString(_ name: String) -> String? {
        var size = 0
        guard sysctlbyname(name, nil, &size, nil, 0) == 0, size > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: size)
        guard sysctlbyname(name, &buffer, &size, nil, 0) == 0 else { return nil }
        let value = String(decoding: buffer.prefix(while: { $0 != 0 }), as: UTF8.self)
        return value.isEmpty ? nil : value
    }
    #endif
}
