"""Multi-scale training: change the training crop / resize size by epoch."""
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from mmengine.hooks import Hook
from mmengine.logging import print_log

from dinov3_mm.registry import HOOKS

Size = Union[int, Sequence[int]]

#: Transform class name -> attribute holding its ``(h, w)`` output size.
DEFAULT_TARGETS: Dict[str, str] = {
    'RandomCropCatRatio': 'crop_size',
    'RandomRescale': 'scale',
    'ResizeKeepRatioPad': 'size',
}


def _pair(size: Size) -> Tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f'size {size} must be a positive int or (h, w).')
    return size  # type: ignore[return-value]


def _datasets(dataset) -> Iterator:
    """``dataset`` and the datasets it wraps (Concat/Repeat/ClassBalanced)."""
    yield dataset
    inner = getattr(dataset, 'dataset', None)
    if inner is not None:
        yield from _datasets(inner)
    for child in getattr(dataset, 'datasets', None) or ():
        yield from _datasets(child)


def _transforms(container) -> Iterator:
    """Every transform of a Compose, recursing into wrapper transforms."""
    for step in getattr(container, 'transforms', None) or ():
        yield step
        if isinstance(getattr(step, 'transforms', None), (list, tuple)):
            yield from _transforms(step)


@HOOKS.register_module()
class ResolutionScheduleHook(Hook):
    """Set the training pipeline's crop / resize size at given epochs.

    ``schedule=[(0, 224), (10, 512)]`` trains epochs 0-9 at 224 and 10 on at
    512 pixels: before each training epoch, every transform of the training
    dataset's pipeline named in ``targets`` gets the size of the last
    schedule entry whose epoch has been reached (until the first entry, the
    pipeline keeps its config size). Resumed runs get the size of the epoch
    they resume at.

    Dataloader workers hold their own copy of the dataset. Without
    persistent workers a new set is started every epoch and sees the change.
    With ``persistent_workers=True`` the hook shuts the running workers down
    when the size changes (``restart_workers``, default), so the next epoch
    starts fresh ones with the new size; this costs one worker start-up per
    schedule step. Only epoch-based training is supported.

    Args:
        schedule (Sequence[tuple[int, int | tuple[int, int]]]): ``(epoch,
            size)`` pairs, epochs strictly increasing; ``size`` is a side or
            ``(h, w)``.
        targets (dict, optional): Transform class name -> size attribute.
            Defaults to :data:`DEFAULT_TARGETS` (``RandomCropCatRatio.
            crop_size``, ``RandomRescale.scale``, ``ResizeKeepRatioPad.size``).
        restart_workers (bool): Restart persistent workers on a change.
            Defaults to True.

    Raises:
        ValueError: A malformed schedule, or (at the first epoch) a training
            pipeline without any target transform.
    """

    priority = 'NORMAL'

    def __init__(self,
                 schedule: Sequence[Tuple[int, Size]],
                 targets: Optional[Dict[str, str]] = None,
                 restart_workers: bool = True) -> None:
        steps = []
        for entry in schedule:
            if len(entry) != 2:
                raise ValueError(f'schedule entry {entry!r} must be (epoch, '
                                 'size).')
            epoch, size = entry
            if int(epoch) < 0:
                raise ValueError(f'schedule epoch {epoch} must be >= 0.')
            steps.append((int(epoch), _pair(size)))
        if not steps:
            raise ValueError('schedule is empty; give (epoch, size) pairs.')
        epochs = [e for e, _ in steps]
        if any(b <= a for a, b in zip(epochs, epochs[1:])):
            raise ValueError(f'schedule epochs {epochs} must be strictly '
                             'increasing.')
        self.schedule: List[Tuple[int, Tuple[int, int]]] = steps
        self.targets = dict(DEFAULT_TARGETS if targets is None else targets)
        self.restart_workers = restart_workers
        self.current: Optional[Tuple[int, int]] = None

    def size_at(self, epoch: int) -> Optional[Tuple[int, int]]:
        """The scheduled size of ``epoch`` (None before the first entry)."""
        size = None
        for start, value in self.schedule:
            if epoch >= start:
                size = value
        return size

    def before_train(self, runner) -> None:
        """Refuse iteration-based training, which has no epochs to follow."""
        from mmengine.runner import EpochBasedTrainLoop
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise ValueError(
                'ResolutionScheduleHook needs epoch-based training '
                "(train_cfg=dict(by_epoch=True, ...)); got "
                f'{type(runner.train_loop).__name__}.')

    def before_train_epoch(self, runner) -> None:
        """Apply this epoch's size to the training pipeline."""
        size = self.size_at(runner.epoch)
        if size is None or size == self.current:
            return
        loader = runner.train_dataloader
        changed = self.apply(loader.dataset, size)
        if not changed:
            names = sorted({type(t).__name__ for d in _datasets(loader.dataset)
                            for t in _transforms(getattr(d, 'pipeline',
                                                         None))})
            raise ValueError(
                'ResolutionScheduleHook found none of '
                f'{sorted(self.targets)} in the training pipeline '
                f'({names}); add a crop/resize transform or set `targets`.')
        if self.restart_workers:  # no-op before the workers exist
            self._restart_workers(loader)
        print_log(
            f'ResolutionScheduleHook: epoch {runner.epoch}: training size '
            f'{size[0]}x{size[1]} ({", ".join(changed)})', logger='current')
        self.current = size

    def apply(self, dataset, size: Tuple[int, int]) -> List[str]:
        """Set ``size`` on every target transform; return what changed."""
        changed = []
        for ds in _datasets(dataset):
            for step in _transforms(getattr(ds, 'pipeline', None)):
                attr = self.targets.get(type(step).__name__)
                if attr is not None:
                    setattr(step, attr, tuple(size))
                    changed.append(f'{type(step).__name__}.{attr}')
        return changed

    @staticmethod
    def _restart_workers(loader) -> None:
        """Shut persistent workers down; the next epoch forks new ones."""
        iterator = getattr(loader, '_iterator', None)
        if not getattr(loader, 'persistent_workers', False) or iterator is None:
            return
        shutdown = getattr(iterator, '_shutdown_workers', None)
        if shutdown is not None:
            shutdown()
        loader._iterator = None
