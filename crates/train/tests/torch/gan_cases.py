"""Reference GAN training steps computed by PyTorch in float64, for nabla's GanTrainer.

Each case builds a small generator G (Linear 2->3, LeakyReLU 0.2, Linear 3->4, Sigmoid) and
discriminator D (Linear 4->5, LeakyReLU 0.2, Linear 5->1: a logit) with seeded weights, then runs
three iterations of Goodfellow's Algorithm 1 as the PyTorch DCGAN example writes it:

    fake = G(z_d).detach()
    L_D = BCE(D(x), real_label) + BCE(D(fake), 0);  optD.zero_grad(); L_D.backward(); optD.step()
    L_G = BCE(D(G(z_g)), 1)          (non-saturating)
        = -BCE(D(G(z_g)), 0)         (minimax: log(1 - D(G(z))))
    optG.zero_grad(); L_G.backward(); optG.step()

recording the inputs, both losses, the sums of D's outputs (sigmoid of the logits) on real and
generated examples, and every weight after the last iteration.

Regenerate (any Python with torch):  python gan_cases.py > gan_cases.json
"""
import json
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def flat(t):
    return t.detach().reshape(-1).tolist()


def state(m):
    return {k: flat(v) for k, v in m.state_dict().items()}


def case(name, generator_loss, real_label, optimizer, seed):
    torch.manual_seed(seed)
    G = torch.nn.Sequential(
        torch.nn.Linear(2, 3), torch.nn.LeakyReLU(0.2), torch.nn.Linear(3, 4), torch.nn.Sigmoid()
    )
    D = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.LeakyReLU(0.2), torch.nn.Linear(5, 1))
    out = {
        "name": name,
        "generator_loss": generator_loss,
        "real_label": real_label,
        "optimizer": optimizer,
        "generator": state(G),
        "discriminator": state(D),
        "steps": [],
    }
    make = {
        "adam": lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.5, 0.999)),
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    }[optimizer]
    opt_g, opt_d = make(G.parameters()), make(D.parameters())
    bce = F.binary_cross_entropy_with_logits
    for _ in range(3):
        x = torch.rand(6, 4)
        z_d = torch.randn(6, 2)
        z_g = torch.randn(6, 2)
        fake = G(z_d).detach()
        real_logits, fake_logits = D(x), D(fake)
        d_loss = bce(real_logits, torch.full_like(real_logits, real_label)) + bce(
            fake_logits, torch.zeros_like(fake_logits)
        )
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        logits = D(G(z_g))
        if generator_loss == "non_saturating":
            g_loss = bce(logits, torch.ones_like(logits))
        else:
            g_loss = -bce(logits, torch.zeros_like(logits))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        out["steps"].append(
            {
                "x": flat(x),
                "z_d": flat(z_d),
                "z_g": flat(z_g),
                "d_loss": d_loss.item(),
                "g_loss": g_loss.item(),
                "d_real_sum": torch.sigmoid(real_logits).sum().item(),
                "d_fake_sum": torch.sigmoid(fake_logits).sum().item(),
            }
        )
    out["generator_after"] = state(G)
    out["discriminator_after"] = state(D)
    return out


print(
    json.dumps(
        {
            "torch": torch.__version__,
            "cases": [
                case("non-saturating, label smoothing, Adam", "non_saturating", 0.9, "adam", 0),
                case("minimax, SGD with momentum", "minimax", 1.0, "sgd", 1),
            ],
        }
    )
)
