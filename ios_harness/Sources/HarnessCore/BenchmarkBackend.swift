import Foundation

/// A model ready to load: the location as found, and the compiled form the backend loads.
public struct CompiledModel: Equatable, Sendable {
    /// The model as discovered (its name and file name go into the report).
    public var location: ModelLocation
    /// What ``BenchmarkBackend/load(_:computeUnits:)`` opens (a `.mlmodelc` for Core ML).
    public var url: URL
    /// Whether ``url`` was made for this run and is removed after it (``BenchmarkBackend/discard(_:)``).
    public var isTemporary: Bool

    public init(location: ModelLocation, url: URL, isTemporary: Bool) {
        self.location = location
        self.url = url
        self.isTemporary = isTemporary
    }

    /// A compiled model that is loaded where it is.
    public static func asIs(_ location: ModelLocation) -> CompiledModel {
        CompiledModel(location: location, url: location.url, isTemporary: false)
    }
}

/// Errors of the default backend behaviour.
public enum BackendError: Error, Equatable, CustomStringConvertible {
    /// The backend cannot compile this kind of file.
    case cannotCompile(fileName: String)

    public var description: String {
        switch self {
        case let .cannotCompile(fileName):
            return "this backend cannot compile \(fileName); give it a compiled .mlmodelc"
        }
    }
}

/// What the harness needs from an inference framework, and nothing more. HarnessCoreML's
/// `CoreMLBackend` is the real one; the Linux tests use fakes.
///
/// The session calls ``compile(_:)`` from its async context, then runs one model's
/// ``load(_:computeUnits:)``, ``inputFeatures(of:)``, ``makeInput(_:for:)`` and every
/// ``predict(_:_:)`` on one dedicated timing thread (``TimingThread``), so `Model` and `Input`
/// never cross threads and need not be `Sendable`.
public protocol BenchmarkBackend: Sendable {
    /// A loaded model (`MLModel`).
    associatedtype Model
    /// A prepared input (`MLDictionaryFeatureProvider`).
    associatedtype Input

    /// The compiled model for `location`; compiles `.mlpackage` and `.mlmodel` files. Untimed.
    func compile(_ location: ModelLocation) async throws -> CompiledModel

    /// Loads a compiled model for `computeUnits`. Timed once (`load_ms`).
    func load(_ compiled: CompiledModel, computeUnits: ComputeUnits) throws -> Model

    /// The model's inputs, as plain values (``InputPlanner`` decides shapes and types).
    func inputFeatures(of model: Model) throws -> [InputFeature]

    /// Allocates and fills the inputs of `plan` once, before any prediction. Untimed.
    func makeInput(_ plan: [InputPlan], for model: Model) throws -> Input

    /// One prediction, the full round trip. Timed.
    func predict(_ model: Model, _ input: Input) throws

    /// An error of this framework as one line of report text.
    func describe(_ error: Error) -> String

    /// Cleans up after a model (removes a temporary compiled copy).
    func discard(_ compiled: CompiledModel)

    /// Where the framework would run each operation of the compiled model with `computeUnits`
    /// (Core ML's `MLComputePlan`). Untimed, after the model's timed runs.
    func computePlan(_ compiled: CompiledModel, computeUnits: ComputeUnits) async -> ComputePlanOutcome
}

extension BenchmarkBackend {
    /// Compiled models load as they are; anything else is ``BackendError/cannotCompile(fileName:)``.
    public func compile(_ location: ModelLocation) async throws -> CompiledModel {
        guard location.format == .compiled else {
            throw BackendError.cannotCompile(fileName: location.fileName)
        }
        return .asIs(location)
    }

    public func describe(_ error: Error) -> String {
        ErrorText.describe(error)
    }

    /// No compute plan by default.
    public func computePlan(_ compiled: CompiledModel, computeUnits: ComputeUnits) async -> ComputePlanOutcome {
        .unavailable("this backend reports no compute plan")
    }

    /// Removes ``CompiledModel/url`` when it is temporary.
    public func discard(_ compiled: CompiledModel) {
        if compiled.isTemporary {
            try? FileManager.default.removeItem(at: compiled.url)
        }
    }
}
