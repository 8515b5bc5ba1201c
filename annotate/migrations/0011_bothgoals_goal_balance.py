import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotate', '0010_criterion_status_change'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='goal_balance',
            field=models.FloatField(default=0.7, help_text='For the “Ranking and validator choice” selector: 1 spends grades only on the system ranking, 0 only on choosing validators; in between, each grade goes to the goal that gains more from it, the ranking’s gain weighted by this value and the validators’ by one minus it (0.7 did best on held-out data).', validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)]),
        ),
    ]
