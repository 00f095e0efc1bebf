import pytest
import torch

from gan_tutorial import exercises, style
from gan_tutorial.exercises import ExerciseError


def stub(*args):
    raise NotImplementedError("your code here")


def good_mean_std(f, g):
    mu_f, mu_g = f.mean((2, 3)), g.mean((2, 3))
    sd_f, sd_g = f.std((2, 3), unbiased=False), g.std((2, 3), unbiased=False)
    return ((mu_f - mu_g) ** 2 + (sd_f - sd_g) ** 2).mean()


def test_mean_std_loss_check(capsys):
    exercises.check_mean_std_loss(good_mean_std)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda f, g: ((f.mean((2, 3)) - g.mean((2, 3))) ** 2 + (f.std((2, 3)) - g.std((2, 3))) ** 2).mean(), "unbiased"),
    (lambda f, g: ((f.mean((2, 3)) - g.mean((2, 3))) ** 2
                   + (f.var((2, 3), unbiased=False) - g.var((2, 3), unbiased=False)) ** 2).mean(), "compares variances"),
    (lambda f, g: good_mean_std(f, g) * f.shape[1], "sums over the channels"),
    (lambda f, g: (f.mean() - g.mean()) ** 2 + (f.std(unbiased=False) - g.std(unbiased=False)) ** 2,
     "one mean and std for all channels"),
    (lambda f, g: ((f.mean(1) - g.mean(1)) ** 2 + (f.std(1, unbiased=False) - g.std(1, unbiased=False)) ** 2).mean(),
     "over the channels, per position"),
    (lambda f, g: ((f.mean((2, 3)) - g.mean((2, 3))) ** 2 + (f.std((2, 3), unbiased=False)
                                                             - g.std((2, 3), unbiased=False)) ** 2), "one number"),
    (lambda f, g: (f.mean((2, 3)) - g.mean((2, 3))).abs().mean(), "which is not the mean over channels"),
    (lambda f, g: ((f - g) ** 2).mean() * 0 + good_mean_std(f, g), "different sizes"),
    (lambda f, g: good_mean_std(f, g) + 0.1, "should be 0"),
])
def test_mean_std_loss_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_mean_std_loss(wrong)


class _TinyExtractor(torch.nn.Module):
    """A stand-in for VGGFeatures: one random convolution and a ReLU, named relu2_1."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, images, layers):
        return {"relu2_1": torch.relu(self.conv(images))}


def test_gram_size_difference_check(capsys):
    vgg, img = _TinyExtractor(), style.painterly_texture(48)
    with torch.no_grad():
        feats = {s: vgg(style.resize(img, s), ["relu2_1"])["relu2_1"] for s in (64, 128)}
    g = {s: style.gram_matrix(f) for s, f in feats.items()}
    right = ((g[64] - g[128]).norm() / g[128].norm()).item()
    exercises.check_gram_size_difference(right, vgg, img)
    exercises.check_gram_size_difference(torch.tensor(right), vgg, img)
    assert capsys.readouterr().out.count("correct") == 2
    raw = {s: g[s] * f.shape[2] * f.shape[3] for s, f in feats.items()}
    for answer, needle in [(None, "not answered"), ("abc", "expected a number"),
                           (((raw[64] - raw[128]).norm() / raw[128].norm()).item(), "unnormalised"),
                           (((g[64] - g[128]).norm() / g[64].norm()).item(), "64-px"),
                           (right + 0.05, "not right")]:
        with pytest.raises(ExerciseError, match=needle) as err:
            exercises.check_gram_size_difference(answer, vgg, img)
        assert f"{right:.4g}" not in str(err.value)
