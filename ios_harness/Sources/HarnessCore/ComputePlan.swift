import Foundation

/// Where Core ML runs one operation of a model, as plain values: what `MLComputePlan` says of an
/// ML program operation (or a neural-network layer).
public struct ComputePlanOperation: Codable, Equatable, Sendable {
    /// The program's function (`main`), or nil for a neural-network layer.
    public var function: String?
    /// The operation's name: its first output's name (`var_12`), or the layer's name.
    public var name: String
    /// `MLModelStructure.Program.Operation.operatorName` (`ios17.conv`), or the layer's type.
    public var operatorName: String
    /// The preferred compute device (``ComputePlanDevice``'s raw value), nil when the plan places
    /// the operation nowhere (a `const`).
    public var preferred: String?
    /// Every compute device that supports it.
    public var supported: [String]
    /// `MLComputePlan.Cost.weight`: the operation's estimated share of the model's work (0...1),
    /// nil when the plan gives none (neural-network layers).
    public var cost: Double?

    public init(function: String?, name: String, operatorName: String, preferred: String?, supported: [String], cost: Double?) {
        self.function = function
        self.name = name
        self.operatorName = operatorName
        self.preferred = preferred
        self.supported = supported
        self.cost = cost
    }

    enum CodingKeys: String, CodingKey {
        case function, name, preferred, supported, cost
        case operatorName = "operator"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(function, forKey: .function)
        try container.encode(name, forKey: .name)
        try container.encode(operatorName, forKey: .operatorName)
        try container.encode(preferred, forKey: .preferred)
        try container.encode(supported, forKey: .supported)
        try container.encode(cost, forKey: .cost)
    }
}

/// The compute devices a plan names (the JSON values the host reads).
public enum ComputePlanDevice: String, Sendable, CaseIterable {
    case cpu
    case gpu
    case neuralEngine = "neural_engine"
}

/// What a backend found out about a model's compute plan.
public enum ComputePlanOutcome: Equatable, Sendable {
    /// The plan: the model's structure (`program`, `neuralNetwork`, `pipeline`, `unsupported`) and
    /// its operations in program order.
    case plan(structure: String, operations: [ComputePlanOperation])
    /// No plan on this OS or with this backend (why, in one line).
    case unavailable(String)
    /// Loading the plan failed (the error, in one line).
    case failed(String)
}

/// The compute-plan document of one model (schema `mobileone-bench/compute-plan`, version 1),
/// which the headless test and the macOS runner print as a `MOBILEONE_BENCH_COMPUTE_PLAN {json}`
/// line, attach and save beside the report. The Python side reads it
/// (`mobileone_bench/devices/apple/placement.py`).
public struct ComputePlanReport: Codable, Equatable, Sendable {
    public static let schemaName = "mobileone-bench/compute-plan"
    public static let schemaVersion = 1
    /// The marker of a compute-plan line.
    public static let marker = "MOBILEONE_BENCH_COMPUTE_PLAN"
    /// The message of ``ComputePlanOutcome/unavailable(_:)`` on an OS without `MLComputePlan`.
    public static let olderOSMessage = "MLComputePlan needs iOS 17.4 or macOS 14.4"

    public var schema: String = ComputePlanReport.schemaName
    public var schemaVersion: Int = ComputePlanReport.schemaVersion
    public var harnessVersion: String = Harness.version
    /// The session's creation time (the report's `created`).
    public var created: Date
    public var device: DeviceInfo
    public var model: String
    public var file: String
    public var computeUnits: ComputeUnits
    /// `ok`, `unavailable` or `error`.
    public var status: String
    public var error: String?
    public var structure: String?
    public var operations: [ComputePlanOperation]

    public init(header: HarnessReport, model: String, file: String, computeUnits: ComputeUnits, outcome: ComputePlanOutcome) {
        created = header.created
        device = header.device
        self.model = model
        self.file = file
        self.computeUnits = computeUnits
        switch outcome {
        case let .plan(structure, operations):
            status = "ok"
            error = nil
            self.structure = structure
            self.operations = operations
        case let .unavailable(reason):
            status = "unavailable"
            error = reason
            structure = nil
            operations = []
        case let .failed(reason):
            status = "error"
            error = reason
            structure = nil
            operations = []
        }
    }

    enum CodingKeys: String, CodingKey {
        case schema, created, device, model, file, status, error, structure, operations
        case schemaVersion = "schema_version"
        case harnessVersion = "harness_version"
        case computeUnits = "compute_units"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(schema, forKey: .schema)
        try container.encode(schemaVersion, forKey: .schemaVersion)
        try container.encode(harnessVersion, forKey: .harnessVersion)
        try container.encode(created, forKey: .created)
        try container.encode(device, forKey: .device)
        try container.encode(model, forKey: .model)
        try container.encode(file, forKey: .file)
        try container.encode(computeUnits, forKey: .computeUnits)
        try container.encode(status, forKey: .status)
        try container.encode(error, forKey: .error)
        try container.encode(structure, forKey: .structure)
        try container.encode(operations, forKey: .operations)
    }

    /// Pretty JSON for the attachment and the file, compact for the marked line.
    public func encoded(pretty: Bool) throws -> Data {
        do {
            return try ReportCoding.makeEncoder(pretty: pretty).encode(self)
        } catch {
            throw ReportError.encodingFailed(ErrorText.describe(error))
        }
    }

    /// `MOBILEONE_BENCH_COMPUTE_PLAN {...}`: the marker, one space, compact JSON on one line.
    public func markedLine() throws -> String {
        guard let json = String(data: try encoded(pretty: false), encoding: .utf8) else {
            throw ReportError.encodingFailed("the encoder produced invalid UTF-8")
        }
        return "\(Self.marker) \(json)"
    }

    /// `mobileone-bench-compute-plan-20261128T120000Z-mobileone_s0.json`: the attachment's and
    /// the saved file's name.
    public func fileName() -> String {
        let safe = String(model.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." ? $0 : "_" })
        return "mobileone-bench-compute-plan-\(ReportStore.compactTimestamp(created))-\(safe).json"
    }
}
